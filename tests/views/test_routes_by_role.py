"""Every route × every method × every role, generated from the app's URL map (issue 10, acceptance).

Each endpoint declares the role it requires (`views.access`: PUBLIC_ENDPOINTS or `require_role`, on the
view or on its blueprint's `before_request`); this test reads that declaration, requests every rule as
anonymous, reader, editor and administrator, and compares the answer with it. A new route that
declares no role fails here (and the gatekeeper refuses it to everyone). No answer may be a 500, a POST
without CSRF token is refused, and every answer carries the security headers.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from piu_app.database import writing
from piu_app.extensions import db
from piu_app.models import ROLES
from piu_app.registry import RECORD_TYPES
from piu_app.services import demo, vocabularies
from piu_app.services import users as user_service
from piu_app.services import workshops as workshop_service
from piu_app.views.access import ANONYMOUS, required_role
from tests.conftest import PASSWORD, csrf_token, login

DUMMY_UID = "00000000-0000-4000-8000-000000000000"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
# Actions that end the session or throw records away run last, so that the others see live records.
LAST = ("auth.logout", ".delete", ".remove_link", ".remove_citation", "backups.restore")


def _url_values(app: Flask, rule, uids: dict[str, str], target_user_id: int) -> dict[str, object]:
    blueprint = rule.endpoint.rpartition(".")[0]
    values: dict[str, object] = {}
    for arg in rule.arguments - set(rule.defaults or {}):
        if arg == "uid":
            if blueprint in RECORD_TYPES:
                values[arg] = uids[blueprint]
            elif blueprint == "workshops":
                values[arg] = uids["workshops"]
            elif rule.endpoint == "peers.innovation":
                values[arg] = uids["innovations"]
            else:
                values[arg] = DUMMY_UID  # no such document / import: 404 is the right answer
        elif arg == "link_name":
            links = RECORD_TYPES[blueprint].links if blueprint in RECORD_TYPES else ()
            values[arg] = links[0].name if links else "no-such-link"
        elif arg == "citation_name":
            citations = RECORD_TYPES[blueprint].citations if blueprint in RECORD_TYPES else ()
            values[arg] = citations[0].name if citations else "no-such-citation"
        elif arg == "target_uid":
            values[arg] = DUMMY_UID  # not cited: 404 is the right answer
        elif arg == "user_id":
            values[arg] = target_user_id
        elif arg == "code":
            values[arg] = "fr" if rule.endpoint == "auth.set_language" else vocabularies.themes()[0].code
        elif arg == "name":
            values[arg] = "place_type" if rule.endpoint.startswith("admin.") else "piu-no-such-backup.sqlite3"
        elif arg == "filename":
            values[arg] = "css/piu.css"
        elif arg == "origin":
            values[arg] = "ville-inconnue"  # no key pinned for it: the administrator gets a 404 or a refusal
        elif arg == "board_uid":
            values[arg] = uids.get("boards", DUMMY_UID)
        elif arg == "fmt":
            values[arg] = "docx"  # a workshop report's download
        elif arg in ("token", "link_id"):
            values[arg] = "0" * 32 if arg == "token" else 1
        else:
            raise AssertionError(f"{rule.rule}: no test value for <{arg}>; add one in {__name__}")
    return values


def _cases(app: Flask, uids: dict[str, str], target_user_id: int) -> list[tuple[str, str, str]]:
    """(endpoint, method, path) of every rule, built before any request (a context left open would
    share its `g`, and so its user, with the requests)."""
    rules = sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint == "auth.logout",
                                                           any(m in r.endpoint for m in LAST), r.rule))
    cases = []
    with app.test_request_context():
        for rule in rules:
            _domain, path = rule.build(_url_values(app, rule, uids, target_user_id), append_unknown=False)
            cases += [(rule.endpoint, method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return cases


@pytest.fixture
def register(app: Flask) -> tuple[dict[str, str], int]:
    with app.test_request_context(), writing():
        demo.load()
        uids = {key: db.session.scalars(db.select(rt.model.uid).where(rt.model.deleted.is_(False))
                                        .order_by(rt.model.id)).first() for key, rt in RECORD_TYPES.items()}
        workshop = workshop_service.create_workshop({"title": "Atelier des freins", "visibility": "network"})
        uids["workshops"] = workshop.uid
        uids["boards"] = workshop_service.create_board(workshop, "barriers").uid
        target = user_service.create(username="target", password=PASSWORD, role="reader")
        db.session.commit()
        missing = [key for key, uid in uids.items() if uid is None]
        assert not missing, f"the demo register has no {missing}: give these types a record here"
        return uids, target.id


def _expect(role: str, required: str, method: str, status: int, location: str, *, with_csrf: bool) -> str | None:
    """Return what is wrong with an answer, or None."""
    if status >= 500:
        return f"answered {status}"
    if method == "POST" and not with_csrf:
        return None if status == 400 else f"a POST without CSRF token answered {status}, not 400"
    if required == ANONYMOUS:
        return None
    if role == ANONYMOUS:
        return None if status == 302 and "/login" in location else f"anonymous got {status} {location}"
    if ROLES.index(role) < ROLES.index(required):
        return None if status == 403 else f"{role} (needs {required}) got {status}, not 403"
    if status in (401, 403) or (status == 302 and "/login?next=" in location):  # logout itself goes to /login
        return f"{role} (needs {required}) was refused: {status} {location}"
    return None


def test_every_route_answers_every_role_as_it_declares(app: Flask, register) -> None:
    uids, target_user_id = register
    clients: dict[str, FlaskClient] = {ANONYMOUS: app.test_client()}
    for role in ("reader", "editor", "admin"):
        clients[role] = login(app.test_client(), role)
    tokens = {role: csrf_token(client, "/login" if role == ANONYMOUS else "/account")
              for role, client in clients.items()}

    undeclared, wrong, seen = [], [], 0
    for endpoint, method, path in _cases(app, uids, target_user_id):
        required = required_role(app, endpoint)
        if required is None:
            undeclared.append(endpoint)
            continue
        for role in (ANONYMOUS, *ROLES):
            client = clients[role]
            attempts = [False, True] if method == "POST" else [True]
            for with_csrf in attempts:
                data = {"csrf_token": tokens[role]} if with_csrf else {}
                response = client.open(path, method=method, data=data)
                seen += 1
                for name, value in SECURITY_HEADERS.items():
                    if response.headers.get(name) != value:
                        wrong.append(f"{method} {path} as {role}: header {name} missing")
                csp = response.headers.get("Content-Security-Policy", "")
                if "script-src 'self'" not in csp or "frame-ancestors 'none'" not in csp:
                    wrong.append(f"{method} {path} as {role}: no Content-Security-Policy")
                problem = _expect(role, required, method, response.status_code, response.headers.get("Location", ""),
                                  with_csrf=with_csrf)
                if problem:
                    wrong.append(f"{method} {path} ({endpoint}) as {role}: {problem}")
                response.close()
    assert not undeclared, (f"routes that declare no required role (add require_role or PUBLIC_ENDPOINTS): "
                            f"{sorted(set(undeclared))}")
    assert not wrong, f"{len(wrong)} of {seen} answers wrong:\n" + "\n".join(wrong[:60])
    assert seen > 800  # every rule × method × role, not a handful


def test_a_route_without_a_declared_role_is_refused_to_everyone(app: Flask) -> None:
    @app.get("/forgotten")
    def forgotten():
        return "open door"

    assert required_role(app, "forgotten") is None
    admin = login(app.test_client(), "admin")
    response = admin.get("/forgotten")
    assert response.status_code == 403 and "open door" not in response.get_data(as_text=True)


def test_the_declaration_reads_blueprint_guards(app: Flask) -> None:
    assert required_role(app, "admin.users") == "admin"
    assert required_role(app, "backups.index") == "admin"
    assert required_role(app, "innovations.edit") == "editor"
    assert required_role(app, "innovations.detail") == "reader"
    assert required_role(app, "static") == ANONYMOUS
    assert re.fullmatch(r"[a-z]+", required_role(app, "main.search") or "")
