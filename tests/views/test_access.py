"""Every page needs a login; every change needs editor; accounts and vocabularies need administrator."""

from __future__ import annotations

import pytest

from piu_app.database import writing
from piu_app.extensions import db
from tests.conftest import PASSWORD, csrf_token
from tests.factories import make_innovation


def test_setup_page_comes_first_on_an_empty_install(tmp_path):
    from piu_app import create_app, upgrade_database

    app = create_app({"TESTING": True}, instance_path=tmp_path / "fresh")
    upgrade_database(app, backup=False)
    client = app.test_client()
    assert client.get("/").headers["Location"].endswith("/setup")
    assert client.get("/innovations/").headers["Location"].endswith("/setup")
    token = csrf_token(client, "/setup")
    response = client.post("/setup", data={
        "csrf_token": token, "city_name": "Ville de Port-Sable", "country_code": "sn", "instance_code": "port-sable",
        "admin_username": "Officer", "admin_password": "un-mot-de-passe", "admin_password_confirm": "un-mot-de-passe"})
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "Ville de Port-Sable" in page and "port-sable" in page
    # once an account exists, the set-up page is closed
    assert client.get("/setup").headers["Location"].endswith("/login")


@pytest.mark.parametrize("path", ["/", "/innovations/", "/search?q=x", "/admin/users", "/experiments/new"])
def test_pages_need_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_healthz_is_public_json(client):
    data = client.get("/healthz").get_json()
    assert data["status"] == "ok" and data["version"]


def test_reader_can_read_but_not_change(app, reader):
    with app.test_request_context(), writing():
        uid = make_innovation().uid
        db.session.commit()
    assert reader.get(f"/innovations/{uid}").status_code == 200
    assert reader.get("/innovations/new").status_code == 403
    token = csrf_token(reader, "/")
    assert reader.post(f"/innovations/{uid}/delete", data={"csrf_token": token}).status_code == 403
    assert reader.get("/admin/users").status_code == 403


def test_editor_cannot_administer(editor):
    assert editor.get("/admin/users").status_code == 403
    assert editor.get("/admin/vocabularies").status_code == 403


def test_admin_manages_accounts_and_vocabularies(admin):
    token = csrf_token(admin, "/admin/users")
    response = admin.post("/admin/users", data={"csrf_token": token, "username": "agent", "display_name": "Agent",
                                                "role": "editor", "password": "long-enough-pw"})
    assert response.status_code == 302
    assert "agent" in admin.get("/admin/users").get_data(as_text=True)
    token = csrf_token(admin, "/admin/vocabularies/place_type")
    admin.post("/admin/vocabularies/place_type", data={"csrf_token": token, "code": "maker_bus", "label_fr": "Fablab mobile",
                                                       "label_en": "Mobile fablab", "active": "y"})
    assert "Fablab mobile" in admin.get("/places/new").get_data(as_text=True)


def test_forms_without_csrf_token_are_refused(editor):
    response = editor.post("/innovations/new", data={"name": "Sans jeton"})
    assert response.status_code == 400
    assert "Le formulaire a expiré" in response.get_data(as_text=True)


def test_failed_logins_are_slowed_down(app, client):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        client.post("/login", data={"username": "editor", "password": "nope", "csrf_token": csrf_token(client, "/login")})
    response = client.post("/login", data={"username": "editor", "password": PASSWORD,
                                           "csrf_token": csrf_token(client, "/login")})
    assert response.status_code == 401 and "Réessayez dans" in response.get_data(as_text=True)


def test_login_does_not_redirect_outside_the_app(client):
    token = csrf_token(client, "/login")
    response = client.post("/login?next=//evil.example/x", data={"username": "editor", "password": PASSWORD,
                                                                 "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_any_user_can_change_their_own_password(reader):
    token = csrf_token(reader, "/account")
    wrong = reader.post("/account", data={"csrf_token": token, "current_password": "nope",
                                          "new_password": "a-new-password", "new_password_confirm": "a-new-password"})
    assert wrong.status_code == 400 and "Le mot de passe actuel est incorrect." in wrong.get_data(as_text=True)
    ok = reader.post("/account", data={"csrf_token": token, "current_password": PASSWORD,
                                       "new_password": "a-new-password", "new_password_confirm": "a-new-password"})
    assert ok.status_code == 302
