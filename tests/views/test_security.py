"""Hardened sessions, log-in, forms and answers (issue 10, items 7-9 and the Low items), attacked as a
stranger would: copied cookies, guessed names, huge ids, control characters, nan, missing versions."""

from __future__ import annotations

from flask.testing import FlaskClient

from piu_app.database import writing
from piu_app.extensions import db
from piu_app.services import users as user_service
from tests.conftest import PASSWORD, csrf_token, login

SECURITY_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "Referrer-Policy", "X-Content-Type-Options")


def _copy_session(source: FlaskClient, target: FlaskClient) -> FlaskClient:
    cookie = source.get_cookie("session")
    assert cookie is not None
    target.set_cookie("session", cookie.value)
    return target


def _logged_in(client: FlaskClient) -> bool:
    return client.get("/").status_code == 200


# --------------------------------------------------------------------------- sessions (item 7)

def test_a_cookie_copied_before_logout_no_longer_works(app, editor):
    thief = _copy_session(editor, app.test_client())
    assert _logged_in(thief)
    editor.post("/logout", data={"csrf_token": csrf_token(editor, "/")})
    assert not _logged_in(editor)
    response = thief.get("/innovations/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_cookie_copied_before_a_reset_no_longer_works(app, admin, editor):
    thief = _copy_session(editor, app.test_client())
    with app.app_context():
        editor_id = user_service.by_username("editor").id
    response = admin.post(f"/admin/users/{editor_id}/password",
                          data={"csrf_token": csrf_token(admin, "/admin/users"), "password": "a-brand-new-one"})
    assert response.status_code == 302
    assert not _logged_in(thief) and not _logged_in(editor)
    assert _logged_in(admin)  # the administrator's own session is untouched


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(app, reader):
    other_device = login(app.test_client(), "reader")
    response = reader.post("/account", data={"csrf_token": csrf_token(reader, "/account"), "current_password": PASSWORD,
                                             "new_password": "a-new-password", "new_password_confirm": "a-new-password"})
    assert response.status_code == 302
    assert _logged_in(reader)
    assert not _logged_in(other_device)


def test_an_admin_resetting_their_own_password_stays_logged_in(app, admin):
    with app.app_context():
        admin_id = user_service.by_username("admin").id
    admin.post(f"/admin/users/{admin_id}/password",
               data={"csrf_token": csrf_token(admin, "/admin/users"), "password": "another-long-one"})
    assert _logged_in(admin)


def test_a_deactivated_account_is_logged_out_at_once(app, admin, editor):
    with app.app_context():
        editor_id = user_service.by_username("editor").id
    admin.post(f"/admin/users/{editor_id}", data={"csrf_token": csrf_token(admin, "/admin/users"),
                                                   f"u{editor_id}-role": "editor"})
    assert not _logged_in(editor)


def test_an_account_of_an_earlier_release_gets_a_token_at_next_login(app):
    with app.app_context(), writing():
        user = user_service.by_username("editor")
        user.session_token = ""  # as migration 0005 leaves the accounts that existed before it
        old_cookie_id = str(user.id)
        db.session.commit()
    client = app.test_client()
    with client.session_transaction() as session:  # a cookie of the earlier release: the id alone
        session["_user_id"], session["_fresh"] = old_cookie_id, True
    assert not _logged_in(client)
    login(client, "editor")
    assert _logged_in(client)
    with app.app_context():
        assert len(user_service.by_username("editor").session_token) == 64


def test_a_forged_session_id_is_refused(app):
    client = app.test_client()
    for forged in ("1:", "1:0000", "99999999999999999999999:abc", ":", "x:y", "1"):
        with client.session_transaction() as session:
            session["_user_id"], session["_fresh"] = forged, True
        assert not _logged_in(client), forged


# --------------------------------------------------------------------------- log-in (Low)

def _try(client: FlaskClient, username: str, password: str = "wrong-password"):
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_token(client, "/login")})


def _message(response) -> str:
    import re

    return re.sub(r"\d+ secondes", "N secondes", " ".join(re.findall(r'class="flash[^"]*"[^>]*>(.*?)<', response.get_data(as_text=True))))


def test_unknown_and_existing_names_get_the_same_answers(app, client):
    known = [_try(client, "editor") for _ in range(app.config["LOGIN_MAX_FAILURES"] + 1)]
    unknown = [_try(client, "nobody-here") for _ in range(app.config["LOGIN_MAX_FAILURES"] + 1)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown]
    assert [_message(r) for r in known] == [_message(r) for r in unknown]
    assert "Réessayez dans" in _message(unknown[-1])


def test_unknown_and_existing_names_take_about_the_same_time(app, client):
    import time

    def timed(name: str) -> float:
        start = time.perf_counter()
        _try(client, name)
        return time.perf_counter() - start

    _try(client, "warm-up")
    known = min(timed("reader") for _ in range(2))
    unknown = min(timed("no-such-user") for _ in range(2))
    assert 0.5 < known / unknown < 2, (known, unknown)


def test_a_stranger_cannot_lock_the_administrator_out(app):
    stranger = app.test_client()
    for _ in range(app.config["LOGIN_MAX_FAILURES"] + 3):
        stranger.post("/login", data={"username": "admin", "password": "guess",
                                      "csrf_token": csrf_token(stranger, "/login")},
                      environ_base={"REMOTE_ADDR": "192.0.2.66"})
    response = stranger.post("/login", data={"username": "admin", "password": PASSWORD,
                                             "csrf_token": csrf_token(stranger, "/login")},
                             environ_base={"REMOTE_ADDR": "192.0.2.66"})
    assert response.status_code == 401 and "Réessayez dans" in response.get_data(as_text=True)
    # the administrator, at the laptop, logs in at once
    login(app.test_client(), "admin")


def test_the_throttle_of_one_name_does_not_slow_another(app, client):
    for _ in range(app.config["LOGIN_MAX_FAILURES"] + 1):
        _try(client, "reader")
    login(client, "editor")


# --------------------------------------------------------------------------- headers (Low)

def test_security_headers_on_pages_errors_static_files_and_redirects(app, client, editor):
    answers = [client.get("/login"), client.get("/"), client.get("/static/css/piu.css"), editor.get("/"),
               editor.get("/no-such-page"), editor.get("/innovations/export.csv"), editor.post("/innovations/new")]
    assert [a.status_code for a in answers] == [200, 302, 200, 200, 404, 200, 400]
    for answer in answers:
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] in ("same-origin", "no-referrer")
        csp = answer.headers["Content-Security-Policy"]
        for directive in ("default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'",
                          "base-uri 'self'", "form-action 'self'"):
            assert directive in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


# --------------------------------------------------------------------------- huge ids (Low)

def test_huge_and_ill_formed_ids_answer_404(admin):
    token = csrf_token(admin, "/admin/users")
    for path in ("/admin/users/99999999999999999999", "/admin/users/99999999999999999999/password",
                 "/admin/users/9223372036854775808", "/admin/users/-1", "/admin/users/1e9"):
        assert admin.post(path, data={"csrf_token": token}).status_code == 404, path
    assert admin.post("/admin/users/9223372036854775807", data={"csrf_token": token}).status_code == 404
