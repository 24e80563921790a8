"""A phone's poll carries only what changed since the version it holds (services/room_memory.BoardSnapshot).

The property: whatever happens on the board between two polls (notes posted, voted, moved, edited, hidden,
shown again, the whole list hidden and revealed again, versions skipped), a phone that applies the answer
to what it held ends with exactly the board's shared notes: none missing, none stale, none left over.
"""

from __future__ import annotations

import json

from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from piu_app.database import writing
from piu_app.extensions import db
from piu_app.models import Board
from piu_app.services import workshops
from piu_app.services.room_memory import BoardSnapshot, changes_since

from .test_participate import BASE, board_url, get, joined, room  # noqa: F401 - the room fixture

UIDS = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(12)]


def _apply(held: dict | None, answer: dict) -> dict:
    """What room.js does with an answer: replace the list, or patch it with the changes and the gone."""
    if held is None or not answer["delta"]:
        notes = {}
    else:
        notes = dict(held["notes"])
    for note in answer["notes"]:
        notes[note["id"]] = note
    for uid in answer.get("gone", []):
        notes.pop(uid, None)
    return {"chain": answer["chain"], "v": answer["v"], "notes": notes}


def _answer(chain: BoardSnapshot, since: str | None, tag: int) -> dict:
    changes = changes_since(chain, since)
    if changes is None:
        return {"chain": chain.chain, "v": tag, "delta": False, "notes": chain.notes}
    return {"chain": chain.chain, "v": tag, "delta": True, **json.loads("{" + changes + "}")}


# A board's life: each step is the shared list at the next version (a step may skip versions).
note = st.fixed_dictionaries({"text": st.sampled_from(["a", "b", "é 🙂"]), "cat": st.sampled_from(["", "c1", "c2"]),
                              "votes": st.integers(0, 3)})
step = st.tuples(st.integers(1, 3), st.dictionaries(st.sampled_from(UIDS), note, max_size=8))


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=12), polls=st.data())
def test_a_phone_that_applies_the_changes_holds_the_board(steps, polls) -> None:
    version, chain, phone = 5, None, None
    for skip, shared in steps:
        version += skip
        chain = BoardSnapshot(1, version, None, [{"id": uid, **n} for uid, n in sorted(shared.items())], chain)
        if polls.draw(st.booleans()):  # this phone polls now (or sleeps through several versions)
            since = None if phone is None else f"{phone['chain']}.{phone['v']}"
            # The answer is tagged with a version read before the notes: it may be older than the content.
            tag = polls.draw(st.integers(max(chain.base, phone["v"] if phone else chain.base), version))
            phone = _apply(phone, _answer(chain, since, tag))
            assert phone["notes"] == {n["id"]: n for n in chain.notes}
    since = None if phone is None else f"{phone['chain']}.{phone['v']}"
    final = _apply(phone, _answer(chain, since, chain.version))
    assert final["notes"] == {n["id"]: n for n in chain.notes}


def test_a_version_of_another_chain_or_out_of_range_gets_the_whole_list() -> None:
    first = BoardSnapshot(1, 10, None, [{"id": UIDS[0], "text": "a", "cat": "", "votes": 0}], None)
    later = BoardSnapshot(1, 12, None, first.notes + [{"id": UIDS[1], "text": "b", "cat": "", "votes": 0}], first)
    assert later.chain == first.chain and json.loads("{" + later.since(first.chain, 10) + "}") == {
        "notes": [later.notes[1]], "gone": []}
    other = BoardSnapshot(1, 12, None, later.notes, None)  # a restart, a restored backup: a new chain
    for since in (f"{other.chain}.9", f"{other.chain}.13", f"{first.chain}.12", "x", "", None, 12,
                  f"{other.chain}.{'9' * 40}", f"{other.chain}.-1", "ABCDEFGH.12", f"{other.chain}x.12"):
        assert changes_since(other, since) is None, since
    assert changes_since(other, f"{other.chain}.12") == '"notes":[],"gone":[]'


def test_a_poll_brings_only_what_changed_through_the_room(app: Flask, room: dict) -> None:  # noqa: F811
    alice, alice_fk = joined(room)
    bob, bob_fk = joined(room)

    def post(client, fk, text, key):
        client.post(board_url(room, "/notes"), base_url=BASE, headers={"Accept": "application/json"},
                    data={"fk": fk, "text": text, "category": room["categories"][0], "client_key": key})

    post(alice, alice_fk, "Première note", "a" * 20)
    first = get(bob, board_url(room, "/state")).json
    assert first["delta"] is False and [n["text"] for n in first["notes"]] == ["Première note"]
    since = f"{first['chain']}.{first['v']}"
    post(alice, alice_fk, "Deuxième note", "b" * 20)
    changes = get(bob, board_url(room, f"/state?since={since}")).json
    assert changes["delta"] is True and [n["text"] for n in changes["notes"]] == ["Deuxième note"]
    assert changes["gone"] == [] and changes["chain"] == first["chain"] and changes["v"] > first["v"]
    # The facilitator hides the first note: it leaves every phone's list.
    with app.test_request_context(), writing():
        board = db.session.get(Board, room["board_id"])
        workshops.moderate(board, first["notes"][0]["id"], "hide")
        db.session.commit()
    since = f"{changes['chain']}.{changes['v']}"
    hidden = get(bob, board_url(room, f"/state?since={since}")).json
    assert hidden["delta"] is True and hidden["notes"] == [] and hidden["gone"] == [first["notes"][0]["id"]]
    # A phone that sends garbage, or a version it cannot hold, gets the whole list.
    for since in ("../../etc", "'; DROP TABLE notes;--", f"{first['chain']}.999999", "0" * 5000):
        whole = get(bob, board_url(room, "/state"), query_string={"since": since}).json
        assert whole["delta"] is False and [n["text"] for n in whole["notes"]] == ["Deuxième note"]


def test_others_notes_may_lag_half_a_second_but_never_ones_own_nor_the_facilitators(
        app: Flask, room: dict, monkeypatch) -> None:  # noqa: F811
    """At 500 phones the board is read once per half second, not once per poll: another phone's note may
    reach a phone one poll later, but a phone's own note and dot, and what the facilitator does, show at once."""
    from piu_app.services import room_memory

    monkeypatch.setattr(room_memory, "SHARED_MAX_AGE", 3600)  # as if every poll came within the half second
    alice, alice_fk = joined(room)
    bob, bob_fk = joined(room)
    cat = room["categories"][0]

    def post(client, fk, text, key):
        answer = client.post(board_url(room, "/notes"), base_url=BASE, headers={"Accept": "application/json"},
                             data={"fk": fk, "text": text, "category": cat, "client_key": key})
        assert answer.status_code == 201

    post(bob, bob_fk, "La note de Bob", "b" * 20)
    before = get(bob, board_url(room, "/state"))
    assert [n["text"] for n in before.json["notes"]] == ["La note de Bob"]
    post(alice, alice_fk, "La note d'Alice", "a" * 20)
    # Bob may still be answered with what he has (304: nothing new for him yet); Alice sees her note at once.
    assert get(bob, board_url(room, "/state"), headers={"If-None-Match": before.headers["ETag"]}).status_code == 304
    assert "La note d'Alice" in [n["text"] for n in get(alice, board_url(room, "/state")).json["notes"]]
    # Bob's own dot shows on the count of his answer at once (and brings Alice's note with it).
    bob_note = before.json["notes"][0]["id"]
    assert bob.post(board_url(room, "/votes"), base_url=BASE, headers={"Accept": "application/json"},
                    data={"fk": bob_fk, "note": bob_note, "delta": "1"}).status_code == 200
    after = get(bob, board_url(room, "/state"), headers={"If-None-Match": before.headers["ETag"]}).json
    assert after["my_votes"] == {bob_note: 1}
    assert {n["text"]: n["votes"] for n in after["notes"]} == {"La note de Bob": 1, "La note d'Alice": 0}
    # The facilitator hides Bob's note: Alice's next answer no longer has it, whatever its age.
    with app.test_request_context(), writing():
        workshops.moderate(db.session.get(Board, room["board_id"]), bob_note, "hide")
        db.session.commit()
    assert [n["text"] for n in get(alice, board_url(room, "/state")).json["notes"]] == ["La note d'Alice"]


def test_a_poll_from_memory_is_answered_as_flask_answers_it(app: Flask, room: dict, monkeypatch) -> None:  # noqa: F811
    """Once the room holds everything a poll needs, the poll is answered before Flask (no request, no
    query): the answer must be the one Flask gives, headers and body, and anything unusual goes to Flask."""
    import gzip

    def body(answer) -> dict:
        data = gzip.decompress(answer.data) if answer.headers.get("Content-Encoding") == "gzip" else answer.data
        return json.loads(data)

    alice, alice_fk = joined(room)
    for i in range(4):  # enough for a gzipped answer
        assert alice.post(board_url(room, "/notes"), base_url=BASE, headers={"Accept": "application/json"},
                          data={"fk": alice_fk, "text": f"Note {i} : " + "assez longue " * 15,
                                "category": room["categories"][0], "client_key": f"{i}" * 20}).status_code == 201
    headers = {"Accept": "application/json", "Accept-Encoding": "gzip"}
    first = get(alice, board_url(room, "/state"), headers=headers)  # Flask answers, the room keeps what it read
    assert first.headers.get("Content-Encoding") == "gzip"
    since = body(first)
    since = f"{since['chain']}.{since['v'] - 1}"
    wsgi = room["wsgi"]
    flask_app = wsgi.flask_app.wsgi_app
    reached_flask = []

    def counting(environ, start_response):
        reached_flask.append(environ["PATH_INFO"])
        return flask_app(environ, start_response)

    monkeypatch.setattr(wsgi.flask_app, "wsgi_app", counting)
    for query in ("", f"?since={since}"):
        fast = get(alice, board_url(room, "/state" + query), headers=headers)
        assert reached_flask == [], "a poll the room could answer from memory reached Flask"
        monkeypatch.setattr(wsgi, "_poll_from_memory", lambda *_a: None)
        slow = get(alice, board_url(room, "/state" + query), headers=headers)
        monkeypatch.undo()
        monkeypatch.setattr(wsgi.flask_app, "wsgi_app", counting)
        assert len(reached_flask) == 1
        reached_flask.clear()
        assert fast.status_code == slow.status_code == 200
        for name in ("Content-Type", "ETag", "Cache-Control", "Content-Encoding", "Vary", "Content-Security-Policy",
                     "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"):
            assert fast.headers.get(name) == slow.headers.get(name), name
        fast_json, slow_json = body(fast), body(slow)
        fast_json.pop("now"), slow_json.pop("now")
        assert fast_json == slow_json
    # A phone the room does not know, a NUL in the query, another board's uid: Flask answers (or refuses).
    stranger, _fk = joined(room)
    assert get(stranger, board_url(room, "/state"), headers=headers).status_code == 200
    assert get(alice, board_url(room, "/state?since=%00"), headers=headers).status_code == 400
    assert len([path for path in reached_flask if path.endswith("/state")]) == 2
