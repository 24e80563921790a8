"""The room's rules, as phones meet them: join, post, see, vote (services/room.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from piu_app.extensions import db
from piu_app.models import StickyNote, WorkshopParticipant, utcnow
from piu_app.services import ConflictError, InvalidInputError, NotFoundError, board_versions, room
from tests.room.factories import make_board, make_workshop

SECRET = "test"


@pytest.fixture(autouse=True)
def _fresh_versions():
    board_versions.forget()  # each test has its own database: board ids repeat
    room.forget_shared()
    yield
    board_versions.forget()
    room.forget_shared()


def _phone(workshop, name=""):
    token = room.new_device_token()
    participant = room.join(workshop, token=token, name=name)
    return token, participant, room.author_key(SECRET, token)


def _post(board, phone, text="Les achats publics sont trop lents", key=None, category=None):
    _token, participant, author = phone
    return room.post_note(board, participant, author=author, text=text,
                          category_uid=category if category is not None else board.categories[0].uid,
                          client_key=key or room.new_device_token()[:20])


def test_join_code_has_no_look_alikes_and_is_unique(ctx) -> None:
    codes = {make_workshop(title=f"Atelier {i}").join_code for i in range(30)}
    assert len(codes) == 30
    assert all(len(c) == 6 and not set(c) & set("01OIL") for c in codes)
    assert room.normalise_code(" ab2-c3d ") == "AB2C3D"  # upper-cased, spaces and dashes dropped
    assert room.normalise_code("AB1C3D") == room.normalise_code("x" * 100) == room.normalise_code(None) == ""
    code = next(iter(codes))
    assert room.normalise_code(code.lower()[:3] + " " + code.lower()[3:]) == code


def test_a_closed_room_has_no_workshop(ctx) -> None:
    workshop = make_workshop()
    with pytest.raises(NotFoundError):
        room.workshop_by_code(workshop.join_code, set())
    assert room.workshop_by_code(workshop.join_code.lower(), {workshop.id}) is workshop


def test_the_same_phone_rejoins_as_the_same_participant(ctx) -> None:
    workshop = make_workshop()
    token = room.new_device_token()
    first = room.join(workshop, token=token, name="Awa Diop", organisation="Ville", consent_named=True)
    again = room.join(workshop, token=token, name="Awa D.")
    assert again.id == first.id and again.name == "Awa D." and not again.consent_named
    stored = db.session.scalar(db.select(WorkshopParticipant).where(WorkshopParticipant.id == first.id))
    assert stored.device_hash == room.device_hash(token) and token not in stored.device_hash
    assert db.session.scalar(db.select(db.func.count()).select_from(WorkshopParticipant)) == 1


@pytest.mark.parametrize("field,value", [("name", "x" * 201), ("name", "Awa\x07"), ("organisation", 42),
                                         ("actor_group", "no-such-group"), ("consent_named", "yes")])
def test_join_refuses_hostile_values(ctx, field, value) -> None:
    workshop = make_workshop()
    with pytest.raises(InvalidInputError):
        room.join(workshop, token=room.new_device_token(), **{field: value})


def test_a_resent_note_is_the_same_note(ctx) -> None:
    workshop = make_workshop()
    board = make_board(workshop)
    phone = _phone(workshop)
    first, created = _post(board, phone, key="k" * 20)
    again, created_again = _post(board, phone, key="k" * 20, text="another text sent with the same key")
    assert created and not created_again and again.id == first.id
    assert db.session.scalar(db.select(db.func.count()).select_from(StickyNote)) == 1
    other = _phone(workshop)
    with pytest.raises(ConflictError):  # another phone cannot claim that key
        _post(board, other, key="k" * 20)


def test_anonymous_notes_keep_no_link_to_their_author(ctx) -> None:
    workshop = make_workshop()
    anonymous = make_board(workshop, anonymous=True)
    named = make_board(workshop, title="Besoins", anonymous=False)
    phone = _phone(workshop, name="Awa")
    note, _ = _post(anonymous, phone)
    signed, _ = _post(named, phone)
    assert note.author_participant_id is None and note.author_key == phone[2]
    assert signed.author_participant_id == phone[1].id


def test_before_the_reveal_a_phone_gets_its_own_notes_only(ctx) -> None:
    workshop = make_workshop()
    board = make_board(workshop, private_until_reveal=True)
    mine, other = _phone(workshop), _phone(workshop)
    _post(board, mine, text="ma note")
    _post(board, other, text="secret d'un autre")
    state = room.board_state(board, author=mine[2], participant=mine[1])
    assert [n["text"] for n in state["own"]] == ["ma note"] and state["notes"] == [] and not state["visible"]
    assert "secret" not in repr(state)
    assert room.projector_state(board)["notes"] == [] and room.projector_state(board)["total"] == 2
    board.revealed = True
    board_versions.bump(board)  # the reveal is a change every phone sees
    db.session.commit()
    state = room.board_state(board, author=mine[2], participant=mine[1])
    assert sorted(n["text"] for n in state["notes"]) == ["ma note", "secret d'un autre"]
    assert len(state["mine"]) == 1 and state["own"] == []


def test_pending_notes_show_to_their_author_only_and_hidden_ones_to_nobody(ctx) -> None:
    workshop = make_workshop()
    board = make_board(workshop, moderated=True)
    author, other = _phone(workshop), _phone(workshop)
    note, _ = _post(board, author)
    assert note.pending
    assert [n.get("pending") for n in room.notes_for_phone(board, author[2])] == [True]
    assert room.notes_for_phone(board, other[2]) == []
    note.pending, note.hidden = False, True
    board_versions.bump(board)
    db.session.commit()
    assert room.notes_for_phone(board, author[2]) == []
    assert room.projector_state(board)["total"] == 0


@pytest.mark.parametrize("text", ["", "   ", "x" * 281, "bell\x07", 12, None])
def test_a_note_must_be_text_within_the_limit(ctx, text) -> None:
    workshop = make_workshop()
    board = make_board(workshop)
    with pytest.raises(InvalidInputError):
        _post(board, _phone(workshop), text=text)


def test_a_note_keeps_its_line_breaks_and_needs_a_known_category(ctx) -> None:
    workshop = make_workshop()
    board = make_board(workshop, note_max_length=20)
    note, _ = _post(board, _phone(workshop), text="deux\nlignes")
    assert note.text == "deux\nlignes"
    for category in ("", "no-such-category"):
        with pytest.raises(InvalidInputError):
            _post(board, _phone(workshop), text="ok", category=category)
    with pytest.raises(InvalidInputError):
        _post(board, _phone(workshop), text="x" * 21)
    with pytest.raises(InvalidInputError):
        _post(board, _phone(workshop), key="short")


@pytest.mark.parametrize("change", [{"frozen": True}, {"state": "closed"}, {"state": "draft"},
                                    {"timer_ends_at": "past"}])
def test_a_frozen_closed_or_timed_out_board_takes_no_note(ctx, change) -> None:
    workshop = make_workshop()
    board = make_board(workshop)
    phone = _phone(workshop)
    kept, _ = _post(board, phone, key="kept-before-freeze")
    for name, value in change.items():
        setattr(board, name, utcnow() - dt.timedelta(seconds=1) if value == "past" else value)
    with pytest.raises(ConflictError):
        _post(board, phone)
    assert _post(board, phone, key="kept-before-freeze")[0].id == kept.id  # a resend still gets its answer
    assert not room.board_state(board, author=phone[2], participant=phone[1])["accepting"]


def test_a_running_timer_still_takes_notes(ctx) -> None:
    workshop = make_workshop()
    board = make_board(workshop, timer_ends_at=utcnow() + dt.timedelta(minutes=5))
    assert _post(board, _phone(workshop))[1]


def test_votes_obey_the_dots_per_participant_and_per_note(ctx) -> None:
    workshop = make_workshop()
    board = make_board(workshop, votes_per_participant=3, votes_per_note=2)
    author, voter = _phone(workshop), _phone(workshop)
    notes = [_post(board, author, text=f"note {i}")[0] for i in range(3)]
    with pytest.raises(ConflictError):  # voting not open yet
        room.vote(board, voter[1], note_uid=notes[0].uid, delta=1)
    board.voting_open = True
    assert room.vote(board, voter[1], note_uid=notes[0].uid, delta=1) == 1
    assert room.vote(board, voter[1], note_uid=notes[0].uid, delta=1) == 2
    with pytest.raises(ConflictError):
        room.vote(board, voter[1], note_uid=notes[0].uid, delta=1)  # 2 per note
    assert room.vote(board, voter[1], note_uid=notes[1].uid, delta=1) == 1
    with pytest.raises(ConflictError):
        room.vote(board, voter[1], note_uid=notes[2].uid, delta=1)  # 3 in all
    assert room.vote(board, voter[1], note_uid=notes[0].uid, delta=-1) == 1
    assert room.vote(board, voter[1], note_uid=notes[2].uid, delta=1) == 1
    db.session.expire_all()
    assert [n.vote_count for n in notes] == [1, 1, 1]
    state = room.board_state(board, author=voter[2], participant=voter[1])
    assert state["votes_left"] == 0 and state["my_votes"] == {n.uid: 1 for n in notes}
    for bad in (0, 2, "1", True):
        with pytest.raises(InvalidInputError):
            room.vote(board, voter[1], note_uid=notes[0].uid, delta=bad)
    board.frozen = True
    with pytest.raises(ConflictError):
        room.vote(board, voter[1], note_uid=notes[0].uid, delta=-1)


def test_hidden_or_unrevealed_notes_take_no_vote(ctx) -> None:
    workshop = make_workshop()
    board = make_board(workshop, voting_open=True, private_until_reveal=True)
    author, voter = _phone(workshop), _phone(workshop)
    note, _ = _post(board, author)
    with pytest.raises(NotFoundError):
        room.vote(board, voter[1], note_uid=note.uid, delta=1)
    board.revealed, note.hidden = True, True
    with pytest.raises(NotFoundError):
        room.vote(board, voter[1], note_uid=note.uid, delta=1)


def test_every_change_raises_the_board_version(ctx) -> None:
    workshop = make_workshop()
    board = make_board(workshop, voting_open=True)
    db.session.commit()
    before = board_versions.current(board.id)
    phone = _phone(workshop)
    note, _ = _post(board, phone)
    db.session.commit()
    after_post = board_versions.current(board.id)
    room.vote(board, phone[1], note_uid=note.uid, delta=1)
    db.session.commit()
    assert before < after_post < board_versions.current(board.id)
    _post(board, phone, key=note.client_key)  # a resend changes nothing
    db.session.commit()
    assert board_versions.current(board.id) == after_post + 1


def test_a_phone_may_post_so_many_notes_on_a_board_and_no_more(ctx, monkeypatch) -> None:
    """A script on a phone posting without end is refused once it reaches the limit; its notes stay, a resent
    note still answers, and another phone may still post."""
    monkeypatch.setattr(room, "NOTES_PER_PHONE", 3)
    workshop = make_workshop()
    board = make_board(workshop)
    script, other = _phone(workshop), _phone(workshop)
    keys = [f"script-key-{i:02d}" for i in range(3)]
    for key in keys:
        _post(board, script, key=key)
    with pytest.raises(ConflictError, match="3 notes"):
        _post(board, script, key="script-key-99")
    assert _post(board, script, key=keys[0])[1] is False  # a resend of a note it has is still the same note
    assert _post(board, other)[1] is True
    assert db.session.scalar(db.select(db.func.count()).select_from(StickyNote)) == 4
