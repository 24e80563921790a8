"""What the room keeps in memory, so that a phone's poll costs no query once the room is running.

At 500 phones the room answers about 200 polls a second while notes and votes arrive; each poll used to
read the workshop by its code, the phone's participant, the board, the board's notes and the phone's own
notes and dots (five to six queries, most of the room's CPU). Now:

* A board's snapshot: its rules (state, timer, reveal, votes) and the notes every phone sees, read together
  at a version, with the JSON of those notes made once. Snapshots form a chain: each note carries the
  version at which it last changed, and a phone that sends the chain and version it holds gets only what
  changed since (a few hundred bytes instead of every note: 90 KB at 1 500 notes, every 2 s, on the room's
  Wi-Fi). A phone of another chain (a restart, a restored backup) gets the whole list.
* A snapshot may be up to SHARED_MAX_AGE old when the changes since are other phones' notes and votes: one
  read of the board per half second instead of one per poll. Never older than the facilitator's last change
  or the asking phone's own last note or vote (`board_versions.must_show`): a phone sees its own dot on the
  count at once, and the reveal at its next poll.
* A phone's own part (its notes only it sees, its notes among the shared, its dots) is kept until the phone
  itself writes or the facilitator changes the board.
* The workshop id of a join code and the participant id of a device are kept while the room is open.

Each read is made by one thread at a time per board (the others wait and take its result): at 300 phones
the same notes were read by several threads at once. What a transaction that has written reads is never
kept: it may roll back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from ..models import Board, NoteCategory, NoteVote, StickyNote, db
from . import board_versions

SHARED_MAX_AGE = 0.5  # seconds: how far a phone's view may lag behind the other phones' notes and votes


@dataclasses.dataclass(frozen=True, slots=True)
class BoardRules:
    """The fields of a board a phone's answer depends on (the names of `Board`'s columns, so that the
    room's rules, written for a Board, read them too)."""

    id: int
    uid: str
    workshop_id: int
    deleted: bool
    state: str
    frozen: bool
    timer_ends_at: dt.datetime | None
    voting_open: bool
    votes_per_participant: int
    votes_per_note: int
    private_until_reveal: bool
    revealed: bool

    @property
    def visible(self) -> bool:
        """Whether every phone sees the notes (see room.notes_visible_to_all)."""
        return not self.private_until_reveal or bool(self.revealed)


_RULE_COLUMNS = [getattr(Board, f.name) for f in dataclasses.fields(BoardRules)]


class BoardSnapshot:
    """One board's rules and shared notes at one version, and what changed in the notes since the chain began."""

    __slots__ = ("board_id", "version", "read_at", "rules", "chain", "base", "notes", "text", "changed", "gone",
                 "_by_version")

    def __init__(self, board_id: int, version: int, rules: BoardRules | None, notes: list[dict[str, Any]],
                 previous: BoardSnapshot | None) -> None:
        self.board_id = board_id
        self.version = version
        self.read_at = time.monotonic()
        self.rules = rules
        self.notes = notes
        self.text = json.dumps(notes, ensure_ascii=False, separators=(",", ":"))
        if previous is None:  # a new chain: every phone's first poll of it gets the whole list
            self.chain, self.base = secrets.token_hex(4), version
            self.changed = {n["id"]: version for n in notes}
            self.gone: dict[str, int] = {}
        else:
            self.chain, self.base = previous.chain, previous.base
            before = {n["id"]: n for n in previous.notes}
            self.changed = {uid: previous.changed[uid] if before.get(uid) == n else version
                            for uid, n in ((n["id"], n) for n in notes)}
            self.gone = {uid: at for uid, at in previous.gone.items() if uid not in self.changed}
            for uid in before.keys() - self.changed.keys():
                self.gone[uid] = version
        self._by_version: dict[int, str] = {}

    def since(self, chain: str, version: int) -> str | None:
        """Return the JSON of what changed after `version` of `chain` (`"notes":[...],"gone":[...]`, no
        braces), or None if the phone must take the whole list (another chain, or a version not of it)."""
        if chain != self.chain or version < self.base or version > self.version:
            return None
        cached = self._by_version.get(version)
        if cached is None:
            changed = [n for n in self.notes if self.changed[n["id"]] > version]
            gone = [uid for uid, at in self.gone.items() if at > version]
            cached = ('"notes":' + json.dumps(changed, ensure_ascii=False, separators=(",", ":"))
                      + ',"gone":' + json.dumps(gone, separators=(",", ":")))
            if len(self._by_version) < 64:  # phones poll from a handful of recent versions
                self._by_version[version] = cached
        return cached


_SINCE_RE = re.compile(r"([0-9a-f]{8})\.([0-9]{1,18})")


def changes_since(snapshot: BoardSnapshot, since: Any) -> str | None:
    """What changed since a phone's `since` ("chain.version", from its last answer), or None (whole list)."""
    match = _SINCE_RE.fullmatch(since) if isinstance(since, str) else None
    return snapshot.since(match.group(1), int(match.group(2))) if match else None


@dataclasses.dataclass(frozen=True, slots=True)
class PhoneView:
    """A phone's own part of its answer, read at `version` for a board whose notes were (not) `visible`."""

    version: int
    visible: bool
    participant_id: int | None
    mine: list[str]  # its notes among those every phone sees
    own: list[dict[str, Any]]  # its notes only it sees (pending, or all of them before the reveal)
    my_votes: dict[str, int]  # note uid → its dots


_lock = threading.Lock()
_snapshots: dict[int, BoardSnapshot] = {}
_phones: dict[tuple[int, str], PhoneView] = {}
_reading: dict[int, threading.Lock] = {}
_codes: dict[str, int] = {}
_participants: dict[tuple[int, str], int] = {}
_PARTICIPANTS_CHANGED = "piu_room_participants_changed"
_generation = 0  # raised whenever kept things are dropped: a read that began before is not kept


def _wrote() -> bool:
    """Whether this request's transaction has written (what it reads may yet be rolled back)."""
    session = db.session()
    return bool(session.new or session.dirty or session.deleted or session.info.get(board_versions._PENDING_KEY))


def _board_lock(board_id: int) -> threading.Lock:
    with _lock:
        return _reading.setdefault(board_id, threading.Lock())


def note_json(uid: str, text: str, category_uid: str | None, votes: int, *, pending: bool = False) -> dict[str, Any]:
    note: dict[str, Any] = {"id": uid, "text": text, "cat": category_uid or "", "votes": votes}
    if pending:
        note["pending"] = True
    return note


def note_rows(board_id: int, *conditions: Any) -> list[tuple]:
    """(uid, text, category uid, votes, pending) of the board's notes that are not hidden, in board order."""
    return list(db.session.execute(
        select(StickyNote.uid, StickyNote.text, NoteCategory.uid, StickyNote.vote_count, StickyNote.pending)
        .outerjoin(NoteCategory, StickyNote.category_id == NoteCategory.id)
        .where(StickyNote.board_id == board_id, StickyNote.hidden.is_(False), *conditions)
        .order_by(StickyNote.position, StickyNote.id)))


def snapshot(board_id: int, *, uid: str | None = None, need: int = 0, max_age: float | None = None) -> BoardSnapshot:
    """Return the snapshot of the board (of that `uid`, when the caller knows it: ids repeat across databases,
    in tests): at version `need` or later, and either current or younger than `max_age` (default
    SHARED_MAX_AGE; 0: current)."""
    max_age = SHARED_MAX_AGE if max_age is None else max_age
    hit = _same_board(_snapshots.get(board_id), uid)
    if _wrote():  # read inside a writing transaction: its own changes, and nothing kept (it may roll back)
        return _read(board_id, hit, keep=False)
    if _fits(hit, need, max_age):
        return hit  # type: ignore[return-value]
    with _board_lock(board_id):
        hit = _same_board(_snapshots.get(board_id), uid)
        if _fits(hit, need, max_age):  # another thread read it meanwhile
            return hit  # type: ignore[return-value]
        return _read(board_id, hit, keep=True)


def kept_snapshot(board_id: int, uid: str, need: int) -> BoardSnapshot | None:
    """The snapshot `snapshot` would answer without reading anything, or None (the room's pre-Flask poll)."""
    hit = _same_board(_snapshots.get(board_id), uid)
    current = board_versions.published(board_id)
    return hit if current is not None and _fits(hit, need, SHARED_MAX_AGE, current) else None


def kept_phone_view(snap: BoardSnapshot, author: str, participant_id: int, need: int) -> PhoneView | None:
    """The phone's own part `phone_view` would answer without reading anything, or None."""
    hit = _phones.get((snap.board_id, author))
    if (hit is not None and snap.rules is not None and hit.version >= need and hit.visible == snap.rules.visible
            and hit.participant_id == participant_id):
        return hit
    return None


def kept_workshop_id(code: str) -> int | None:
    return _codes.get(code)


def kept_participant_id(workshop: int, device_hash: str) -> int | None:
    return _participants.get((workshop, device_hash))


def _same_board(hit: BoardSnapshot | None, uid: str | None) -> BoardSnapshot | None:
    if hit is None or uid is None or (hit.rules is not None and hit.rules.uid == uid):
        return hit
    return None


def _fits(hit: BoardSnapshot | None, need: int, max_age: float, current: int | None = None) -> bool:
    if hit is None or hit.version < need:
        return False
    if current is None:
        current = board_versions.current(hit.board_id)
    return hit.version >= current or time.monotonic() - hit.read_at < max_age


def _read(board_id: int, previous: BoardSnapshot | None, *, keep: bool) -> BoardSnapshot:
    # The version is the board's stored revision, read with its rules in this transaction: the content that
    # follows is of that version or newer. (The version published in memory is not: on SQLite a request
    # reads the database as it was at its first SELECT, which may be before the last change it knows of.)
    published = board_versions.current(board_id)  # also puts it in memory for the room's 304s before Flask
    row = db.session.execute(select(Board.revision, *_RULE_COLUMNS).where(Board.id == board_id)).first()
    version = (row[0] or 0) if row is not None else published
    rules = BoardRules(*row[1:]) if row is not None else None
    notes = []
    if rules is not None and rules.visible:
        notes = [note_json(uid, text, cat, votes) for uid, text, cat, votes, _p
                 in note_rows(board_id, StickyNote.pending.is_(False))]
    made = BoardSnapshot(board_id, version, rules, notes, previous)
    if keep:
        with _lock:
            _snapshots[board_id] = made
    return made


def phone_view(snap: BoardSnapshot, author: str, participant_id: int | None, *, need: int) -> PhoneView:
    """Return the phone's own part for the snapshot's board, read at version `need` or later."""
    rules = snap.rules
    assert rules is not None
    key = (rules.id, author)
    hit = _phones.get(key)
    wrote = _wrote()
    if (not wrote and hit is not None and hit.version >= need and hit.visible == rules.visible
            and hit.participant_id == participant_id):
        return hit
    generation = _generation
    version = db.session.scalar(select(Board.revision).where(Board.id == rules.id)) or 0  # as in `_read`
    mine, own = [], []
    for uid, text, cat, votes, pending in note_rows(rules.id, StickyNote.author_key == author):
        if rules.visible and not pending:
            mine.append(uid)
        else:
            own.append(note_json(uid, text, cat, votes, pending=pending))
    my_votes = votes_of(rules.id, participant_id)
    made = PhoneView(version, rules.visible, participant_id, mine, own, my_votes)
    if not wrote:
        with _lock:
            if generation == _generation:  # nothing was forgotten while it was read
                _phones[key] = made
    return made


def votes_of(board_id: int, participant_id: int | None) -> dict[str, int]:
    """Return {note uid: dots} the participant put on the board's notes."""
    if participant_id is None:
        return {}
    rows = db.session.execute(select(StickyNote.uid, NoteVote.weight).join(StickyNote).where(
        StickyNote.board_id == board_id, NoteVote.participant_id == participant_id))
    return {uid: weight for uid, weight in rows}


def workshop_id(code: str, lookup: Callable[[], int | None]) -> int | None:
    """The workshop id of a (normalised) join code, kept once found: a code never changes owner."""
    return _kept(_codes, code, lookup)


def participant_id(workshop: int, device_hash: str, lookup: Callable[[], int | None]) -> int | None:
    """The participant id of a device in a workshop, kept once found (until a participant is removed)."""
    return _kept(_participants, (workshop, device_hash), lookup)


def _kept(kept: dict[Any, int], key: Any, lookup: Callable[[], int | None]) -> int | None:
    found = kept.get(key)
    if found is None:
        generation = _generation
        found = lookup()
        with _lock:
            # Not kept if a writing transaction read it (it may roll back), or if what is kept was forgotten
            # meanwhile (a participant removed while this was read: the read may predate the removal).
            if found is not None and not _wrote() and generation == _generation:
                kept[key] = found
    return found


def participants_changed() -> None:
    """Call when a participant row is removed: the ids kept are dropped once the transaction commits."""
    db.session.info[_PARTICIPANTS_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_PARTICIPANTS_CHANGED, False):
        global _generation
        with _lock:
            _generation += 1
            _participants.clear()
            _phones.clear()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PARTICIPANTS_CHANGED, None)


def forget() -> None:
    """Drop everything kept (tests; a restored backup; a room opened or closed)."""
    global _generation
    with _lock:
        _generation += 1
        _snapshots.clear()
        _phones.clear()
        _reading.clear()
        _codes.clear()
        _participants.clear()


