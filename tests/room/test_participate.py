"""The room app, as a phone meets it over HTTP (the Flask test client on the room's own WSGI app)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.test import Client

from piu_app.database import writing
from piu_app.extensions import db
from piu_app.models import StickyNote, WorkshopParticipant
from piu_app.room.app import create_room_app
from piu_app.services import board_versions, room_memory
from piu_app.services import room as room_service
from tests.room.factories import make_board, make_workshop

HOST = "192.0.2.10:5081"
BASE = f"http://{HOST}"


@pytest.fixture
def room(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    # Every poll sees every change at once (the room lets other phones' changes lag half a second: a test
    # of its own, tests/room/test_poll_changes.py).
    monkeypatch.setattr(room_memory, "SHARED_MAX_AGE", 0)
    board_versions.forget()
    room_service.forget_shared()
    with app.test_request_context(), writing():
        workshop = make_workshop()
        board = make_board(workshop, voting_open=True)
        db.session.commit()
        ids = {"workshop_id": workshop.id, "code": workshop.join_code, "board": board.uid, "board_id": board.id,
               "categories": [c.uid for c in board.categories]}
    open_ids = {ids["workshop_id"]}
    wsgi = create_room_app(app, open_workshops=open_ids, allowed_hosts={HOST})
    ids.update(wsgi=wsgi, open_ids=open_ids, app=app)
    yield ids
    board_versions.forget()


def phone(room: dict) -> Client:
    return Client(room["wsgi"])


def get(client: Client, path: str, **kw):
    return client.get(path, base_url=BASE, **kw)


def form_key(html: str) -> str:
    return re.search(r'name="fk" value="([^"]+)"', html).group(1)


def joined(room: dict, name: str = "") -> tuple[Client, str]:
    client = phone(room)
    page = get(client, f"/r/{room['code']}")
    assert page.status_code == 200
    fk = form_key(page.get_data(as_text=True))
    answer = client.post(f"/r/{room['code']}/join", base_url=BASE, data={"fk": fk, "name": name})
    assert answer.status_code == 302
    return client, fk


def board_url(room: dict, tail: str = "") -> str:
    return f"/r/{room['code']}/b/{room['board']}{tail}"


def _count(app: Flask, model) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model))


def test_every_officer_route_is_absent_from_the_room(app: Flask, room: dict) -> None:
    """Generated from the officer app's URL map: no officer route exists behind the room listener."""
    client = phone(room)
    room_rules = {r.rule for r in room["wsgi"].flask_app.url_map.iter_rules()}
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.rule in room_rules:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: "1" if m.group(1).endswith("id") else "x", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method, base_url=BASE)
            assert response.status_code == 404, f"{method} {path} ({rule.endpoint}) answered {response.status_code}"
            checked += 1
    assert checked > 100
    endpoints = {r.endpoint for r in room["wsgi"].flask_app.url_map.iter_rules()}
    assert all(e.startswith("participate.") for e in endpoints), endpoints


@pytest.mark.parametrize("host", ["127.0.0.1:5080", "evil.example", "192.0.2.10", "192.0.2.10:5082", ""])
def test_a_host_the_listener_did_not_announce_is_refused(room: dict, host: str) -> None:
    response = Client(room["wsgi"]).get("/", headers={"Host": host})
    assert response.status_code == 421
    assert response.headers["X-Frame-Options"] == "DENY"


def test_join_by_code_and_come_back_by_cookie(app: Flask, room: dict) -> None:
    client = phone(room)
    home = get(client, "/")
    assert home.status_code == 200 and "Content-Security-Policy" in home.headers
    typed = get(client, "/?code=" + room["code"].lower())
    assert typed.status_code == 302 and typed.headers["Location"].endswith(f"/r/{room['code']}")
    assert get(client, "/?code=ZZZZZZ").status_code == 404
    cookie = home.headers["Set-Cookie"]  # the first page gives the phone its device token
    assert "piu_device=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = get(client, f"/r/{room['code']}")
    assert "Set-Cookie" not in page.headers  # the same token from now on
    answer = client.post(f"/r/{room['code']}/join", base_url=BASE,
                         data={"fk": form_key(page.get_data(as_text=True)), "name": "Awa Diop",
                               "organisation": "Ville", "consent": "1"})
    assert answer.status_code == 302
    assert get(client, f"/r/{room['code']}").headers["Location"].endswith(board_url(room))  # one open board
    assert get(client, board_url(room)).status_code == 200  # a reload: the same phone, still joined
    with app.app_context():
        people = db.session.scalars(db.select(WorkshopParticipant)).all()
        assert [(p.name, p.consent_named, p.source) for p in people] == [("Awa Diop", True, "phone")]
    stranger = phone(room)
    assert get(stranger, board_url(room)).status_code == 302  # not joined: sent to the door


def test_a_post_needs_the_device_form_key(app: Flask, room: dict) -> None:
    client, fk = joined(room)
    data = {"text": "Délais de paiement", "category": room["categories"][0], "client_key": "a" * 22}
    assert client.post(board_url(room, "/notes"), base_url=BASE, data=data).status_code == 400
    assert client.post(board_url(room, "/notes"), base_url=BASE, data={**data, "fk": "0" * 32}).status_code == 400
    other, other_fk = joined(room)
    assert client.post(board_url(room, "/notes"), base_url=BASE, data={**data, "fk": other_fk}).status_code == 400
    assert _count(app, StickyNote) == 0
    cookieless = phone(room)
    assert cookieless.post(board_url(room, "/notes"), base_url=BASE, data={**data, "fk": fk}).status_code == 400


def test_without_javascript_a_note_posts_and_redirects_once(app: Flask, room: dict) -> None:
    client, fk = joined(room)
    page = get(client, board_url(room)).get_data(as_text=True)
    key = re.search(r'name="client_key" value="([^"]+)"', page).group(1)
    data = {"fk": fk, "text": "Délais de paiement trop longs", "category": room["categories"][1], "client_key": key}
    first = client.post(board_url(room, "/notes"), base_url=BASE, data=data)
    again = client.post(board_url(room, "/notes"), base_url=BASE, data=data)  # a double tap, a resent form
    assert first.status_code == again.status_code == 302
    assert _count(app, StickyNote) == 1
    assert "Délais de paiement trop longs" in get(client, board_url(room)).get_data(as_text=True)
    too_long = client.post(board_url(room, "/notes"), base_url=BASE,
                           data={**data, "client_key": "b" * 22, "text": "x" * 281})
    assert too_long.status_code == 400 and "x" * 281 in too_long.get_data(as_text=True)  # the text is given back
    assert _count(app, StickyNote) == 1


def test_with_javascript_a_resent_key_answers_the_same_note(app: Flask, room: dict) -> None:
    client, fk = joined(room)
    data = {"fk": fk, "text": "Manque de sourcing", "category": room["categories"][0], "client_key": "c" * 24}
    first = client.post(board_url(room, "/notes"), base_url=BASE, data=data, headers={"Accept": "application/json"})
    again = client.post(board_url(room, "/notes"), base_url=BASE, data=data, headers={"Accept": "application/json"})
    assert first.status_code == 201 and again.status_code == 200
    assert first.json["id"] == again.json["id"] and again.json["created"] is False
    assert _count(app, StickyNote) == 1


def test_an_unchanged_poll_is_a_304_without_flask(room: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    client, fk = joined(room)
    state = get(client, board_url(room, "/state"), headers={"Accept": "application/json"})
    assert state.status_code == 200 and state.json["notes"] == state.json["own"] == []
    etag = state.headers["ETag"]

    def no_flask(*_args):
        raise AssertionError("the poll reached Flask")

    monkeypatch.setattr(room["wsgi"].flask_app, "wsgi_app", no_flask)
    unchanged = get(client, board_url(room, "/state"), headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.headers["ETag"] == etag
    monkeypatch.undo()
    client.post(board_url(room, "/notes"), base_url=BASE, headers={"Accept": "application/json"},
                data={"fk": fk, "text": "Une note", "category": room["categories"][0], "client_key": "d" * 24})
    changed = get(client, board_url(room, "/state"), headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert [n["text"] for n in changed.json["notes"]] == ["Une note"]


def test_a_snapshot_is_tagged_with_the_version_its_content_has(app: Flask, room: dict) -> None:
    """A request's read may begin before a change is committed and published (on SQLite it then reads the
    database as it was): its snapshot must carry the version of what it read, never the newer published one,
    or every phone would keep the older content under the newer tag (answered 304 until the next change)."""
    import threading

    author, fk = joined(room)
    with app.test_request_context():
        db.session.get(__import__("piu_app.models", fromlist=["Board"]).Board, room["board_id"])  # the read begins

        def post() -> None:  # meanwhile a phone's note is committed and published
            answer = author.post(board_url(room, "/notes"), base_url=BASE, headers={"Accept": "application/json"},
                                 data={"fk": fk, "text": "Une note arrivée pendant la lecture",
                                       "category": room["categories"][0], "client_key": "w" * 20})
            assert answer.status_code == 201

        thread = threading.Thread(target=post)
        thread.start()
        thread.join()
        published = board_versions.current(room["board_id"])
        snap = room_memory.snapshot(room["board_id"], need=0, max_age=0)
        has_note = any(n["text"] == "Une note arrivée pendant la lecture" for n in snap.notes)
        assert has_note == (snap.version >= published), (has_note, snap.version, published)
        db.session.rollback()
    state = get(author, board_url(room, "/state")).json
    assert [n["text"] for n in state["notes"]] == ["Une note arrivée pendant la lecture"]


def test_one_thread_reads_a_board_s_notes_per_version(app: Flask, room: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """While phones post, every poll finds a new version: the threads answering them at once read the
    board's notes once, not once each."""
    import threading
    import time

    reads: list[int] = []
    original = room_memory.note_rows

    def slow_rows(board_id, *conditions):
        reads.append(board_id)
        time.sleep(0.2)
        return original(board_id, *conditions)

    monkeypatch.setattr(room_memory, "note_rows", slow_rows)
    board_versions.forget()
    room_service.forget_shared()
    answers: list[str] = []

    def poll() -> None:
        with app.test_request_context():
            answers.append(room_memory.snapshot(room["board_id"]).text)
            db.session.remove()

    threads = [threading.Thread(target=poll) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == ["[]"] * 4 and reads == [room["board_id"]]


def test_private_writing_sends_a_phone_its_own_notes_only(app: Flask, room: dict) -> None:
    with app.app_context():
        board = db.session.get(__import__("piu_app.models", fromlist=["Board"]).Board, room["board_id"])
        board.private_until_reveal = True
        db.session.commit()
    alice, alice_fk = joined(room)
    bob, bob_fk = joined(room)
    for client, fk, text in ((alice, alice_fk, "note d'Alice"), (bob, bob_fk, "note de Bob")):
        client.post(board_url(room, "/notes"), base_url=BASE, headers={"Accept": "application/json"},
                    data={"fk": fk, "text": text, "category": room["categories"][0], "client_key": fk[:20]})
    page = get(alice, board_url(room)).get_data(as_text=True)
    state = get(alice, board_url(room, "/state")).get_data(as_text=True)
    assert "note d&#39;Alice" in page and "note d'Alice" in state
    assert "Bob" not in page and "Bob" not in state


def test_votes_from_a_phone(app: Flask, room: dict) -> None:
    author, author_fk = joined(room)
    author.post(board_url(room, "/notes"), base_url=BASE, headers={"Accept": "application/json"},
                data={"fk": author_fk, "text": "Une note", "category": room["categories"][0], "client_key": "e" * 24})
    voter, fk = joined(room)
    note = get(voter, board_url(room, "/state")).json["notes"][0]["id"]
    assert voter.post(board_url(room, "/votes"), base_url=BASE, data={"fk": fk, "note": note, "delta": "1"}
                      ).status_code == 302
    refused = voter.post(board_url(room, "/votes"), base_url=BASE, data={"fk": fk, "note": note, "delta": "1"},
                         headers={"Accept": "application/json"})
    assert refused.status_code == 409  # one dot per note on this board
    state = get(voter, board_url(room, "/state")).json
    assert state["notes"][0]["votes"] == 1 and state["my_votes"] == {note: 1} and state["votes_left"] == 4
    assert voter.post(board_url(room, "/votes"), base_url=BASE, data={"fk": fk, "note": note, "delta": "7"}
                      ).status_code == 400


def test_a_closed_room_answers_nothing(room: dict) -> None:
    client, _fk = joined(room)
    room["open_ids"].clear()
    assert get(client, board_url(room)).status_code == 404
    assert get(client, f"/r/{room['code']}").status_code == 404


def test_the_phone_language_follows_accept_language_or_the_link(room: dict) -> None:
    client = phone(room)
    assert "Rejoindre un atelier" in get(client, "/").get_data(as_text=True)
    english = get(client, "/", headers={"Accept-Language": "en-GB,en;q=0.9,fr;q=0.5"}).get_data(as_text=True)
    assert "Join a workshop" in english
    switched = get(client, "/lang/en?next=/")
    assert switched.status_code == 302
    assert "Join a workshop" in get(client, "/").get_data(as_text=True)
    assert get(client, "/lang/en?next=//evil.example").headers["Location"] == "/"


def test_the_first_load_weighs_under_30_kb(room: dict) -> None:
    client, _fk = joined(room)
    gz = {"Accept-Encoding": "gzip, deflate"}
    page = get(client, board_url(room), headers=gz)
    total = len(page.data)
    for asset in re.findall(r'(?:href|src)="(/s/[^"]+)"', page.get_data(as_text=True) if page.headers.get(
            "Content-Encoding") != "gzip" else __import__("gzip").decompress(page.data).decode()):
        answer = get(client, asset, headers=gz)
        assert answer.status_code == 200 and answer.headers.get("Content-Encoding") == "gzip"
        total += len(answer.data)
    assert total < 30 * 1024, total
    assert get(client, "/s/../room.py").status_code == 404


def test_without_javascript_a_full_board_shows_the_latest_notes_and_a_link_to_all(app: Flask, room: dict,
                                                                                   monkeypatch) -> None:
    from piu_app.room.participate import PAGE_NOTES

    monkeypatch.setattr(room_service, "NOTES_PER_PHONE", PAGE_NOTES + 5)  # one phone writes them all
    author, author_fk = joined(room)
    for i in range(PAGE_NOTES + 5):
        answer = author.post(board_url(room, "/notes"), base_url=BASE, headers={"Accept": "application/json"},
                             data={"fk": author_fk, "text": f"Note numéro {i:03d}", "category": room["categories"][0],
                                   "client_key": f"k{i:03d}" + "x" * 20})
        assert answer.status_code == 201
    reader, reader_fk = joined(room)
    page = get(reader, board_url(room)).get_data(as_text=True)
    shown = re.findall(r"Note numéro (\d{3})", page)
    assert shown == [f"{i:03d}" for i in range(5, PAGE_NOTES + 5)]  # the latest, in board order
    assert f"toutes les notes ({PAGE_NOTES + 5})" in page and "all=1" in page
    # Each shown note still carries its vote form with this phone's key.
    assert page.count(f'name="fk" value="{reader_fk}"') >= PAGE_NOTES
    everything = get(reader, board_url(room, "?all=1")).get_data(as_text=True)
    assert len(re.findall(r"Note numéro (\d{3})", everything)) == PAGE_NOTES + 5 and "toutes les notes" not in everything
