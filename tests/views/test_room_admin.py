"""The facilitator's room page and projector: open and close the listener, self-check, QR codes."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from piu_app.database import writing
from piu_app.extensions import db
from piu_app.room.listener import listener_for
from piu_app.services import board_versions
from tests.conftest import csrf_token, login
from tests.room.factories import make_board, make_workshop


@pytest.fixture
def workshop(app: Flask) -> Iterator[dict]:
    app.config.update(ROOM_ADDRESSES="127.0.0.1", ROOM_PORT=0)
    board_versions.forget()
    with app.test_request_context(), writing():
        ws = make_workshop(join_code="")
        board = make_board(ws)
        ids = {"uid": ws.uid, "board": board.uid}
        db.session.commit()
    yield ids
    listener_for(app).close_all()
    board_versions.forget()


def _get(port: int, path: str, host: str | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path, headers={"Host": host or f"127.0.0.1:{port}"})
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    return response.status, body


def test_one_action_opens_the_room_and_one_closes_it(app: Flask, editor: FlaskClient, workshop: dict) -> None:
    page = f"/workshops/{workshop['uid']}/room"
    token = csrf_token(editor, page)
    assert "Ouvrir la salle" in editor.get(page).get_data(as_text=True)
    opened = editor.post(page + "/open", data={"csrf_token": token}, follow_redirects=True)
    html = opened.get_data(as_text=True)
    listener = listener_for(app)
    assert listener.running and listener.port > 0
    code = re.search(r'class="join-code">([A-Z0-9]{6})<', html).group(1)
    assert "répond" in html and "ne répond pas" not in html  # the self-check asked the port itself
    status, body = _get(listener.port, f"/r/{code}")
    assert status == 200 and code in body or "Atelier PIU Aix" in body
    assert _get(listener.port, "/login")[0] == 404  # officer pages do not exist on the room's door
    assert _get(listener.port, "/", host=f"127.0.0.1:{listener.port + 1}")[0] == 421
    projector = editor.get(f"/workshops/{workshop['uid']}/projector").get_data(as_text=True)
    assert "<svg" in projector and f"http://127.0.0.1:{listener.port}/r/{code}" in projector
    assert "style=" not in projector.split("<svg", 1)[1].split("</svg>", 1)[0]  # CSP: no inline style
    port = listener.port
    editor.post(page + "/close", data={"csrf_token": token})
    assert not listener.running
    with pytest.raises(OSError):
        _get(port, "/")


def test_readers_see_the_room_but_cannot_open_it(app: Flask, reader: FlaskClient, workshop: dict) -> None:
    page = f"/workshops/{workshop['uid']}/room"
    assert reader.get(page).status_code == 200
    assert reader.post(page + "/open", data={"csrf_token": csrf_token(reader, page)}).status_code == 403
    assert not listener_for(app).running
    assert reader.get("/workshops/00000000-0000-4000-8000-000000000000/room").status_code == 404


def test_the_wifi_qr_code_is_kept_in_memory_only(app: Flask, editor: FlaskClient, workshop: dict) -> None:
    page = f"/workshops/{workshop['uid']}/room"
    token = csrf_token(editor, page)
    editor.post(page + "/open", data={"csrf_token": token})
    answer = editor.post(f"/workshops/{workshop['uid']}/projector/wifi", follow_redirects=True,
                         data={"csrf_token": token, "ssid": "Salle-PIU", "password": "secret;pass", "security": "WPA"})
    html = answer.get_data(as_text=True)
    assert html.count("<svg") == 2 and "Salle-PIU" in html and "secret" not in html
    with app.app_context():
        assert "secret;pass" not in repr(db.session.execute(db.text("SELECT * FROM workshops")).all())
    bad = editor.post(f"/workshops/{workshop['uid']}/projector/wifi", follow_redirects=True,
                      data={"csrf_token": token, "ssid": "x" * 33, "password": "p", "security": "WPA"})
    assert "32 caractères au plus" in bad.get_data(as_text=True)


def test_the_projector_polls_with_an_etag(app: Flask, workshop: dict) -> None:
    reader = login(app.test_client(), "reader")
    url = f"/workshops/{workshop['uid']}/projector/state?board={workshop['board']}"
    first = reader.get(url)
    assert first.status_code == 200 and first.json["total"] == 0
    assert reader.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304


def test_the_projector_shows_500_notes_by_category_once_revealed(app: Flask, workshop: dict) -> None:
    from piu_app.models import Board, StickyNote

    with app.app_context(), writing():
        board = db.session.scalar(db.select(Board).where(Board.uid == workshop["board"]))
        board.private_until_reveal = True
        categories = board.categories
        db.session.add_all(StickyNote(board_id=board.id, category_id=categories[i % 2].id, text=f"Note numéro {i}",
                                      client_key=f"projector-{i:04d}", position=i) for i in range(500))
        db.session.commit()
    reader = login(app.test_client(), "reader")
    url = f"/workshops/{workshop['uid']}/projector"
    hidden = reader.get(url).get_data(as_text=True)
    assert "Note numéro" not in hidden and ">250<" in hidden  # counts per category, no text before the reveal
    with app.app_context(), writing():
        board = db.session.scalar(db.select(Board).where(Board.uid == workshop["board"]))
        board.revealed = True
        board_versions.bump(board)
        db.session.commit()
    shown = reader.get(url).get_data(as_text=True)
    assert shown.count("Note numéro") == 500
    state = reader.get(url + f"/state?board={workshop['board']}").json
    assert len(state["notes"]) == 500 and sorted(state["counts"].values()) == [250, 250]
