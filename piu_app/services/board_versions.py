"""The version of each board that phones poll, held in memory so that "nothing new" costs nothing.

Every change a participant can see (a note posted, approved, hidden, moved; a vote; the reveal; the
timer; a theme renamed) calls `bump(board)` inside its transaction. The stored `boards.revision` is
raised with the change, and the in-memory number once the transaction has committed, so that a phone
never sees a version whose content is not readable yet. A poll compares the phone's ETag with
`current(board_id)`: equal → 304, decided without a session, a query or a template.

One process serves both doors (the officer's pages and the room listener), so one dict is enough.
After a restart the first poll of a board reads its stored revision once.

It also remembers who made the last changes: the version of the facilitator's last change to a board, and
of each phone's own last change. A phone's answer may lag half a second behind the other phones' notes and
votes (services/room_memory.py), never behind its own or the facilitator's.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from ..models import Board, db, utcnow

_lock = threading.Lock()
_versions: dict[int, int] = {}
_PENDING_KEY = "piu_board_versions_pending"
_BY_KEY = "piu_board_versions_by"
# board id → version of the last change not made by a phone (the facilitator's: a reveal, a hidden note…)
_officer_at: dict[int, int] = {}
# (board id, phone's author key) → version of that phone's last note or vote
_phone_at: dict[tuple[int, str], int] = {}
_OFFICER = ""


def current(board_id: int) -> int:
    """Return the board's committed version (reads the database only the first time after a start)."""
    version = _versions.get(board_id)
    if version is not None:
        return version
    stored = db.session.scalar(select(Board.revision).where(Board.id == board_id)) or 0
    with _lock:
        return _versions.setdefault(board_id, stored)


def published(board_id: int) -> int | None:
    """The board's version held in memory, or None if none is yet (never reads the database: for the room's
    answers made before Flask, outside any application context)."""
    return _versions.get(board_id)


def bump(board: Board, *, phone: str = "") -> None:
    """Raise the board's version with the change being written (call inside the writing transaction).

    The board's record version rises too: its notes, columns and themes travel with it in bundles,
    and a peer (or a city that relays it) takes a board's new content only with a higher version
    (a note hidden here must disappear there too)."""
    board.revision = (board.revision or 0) + 1
    board.version = (board.version or 0) + 1
    board.updated_at = utcnow()
    pending: dict[int, int] = db.session.info.setdefault(_PENDING_KEY, {})
    pending[board.id] = board.revision
    by: dict[int, str] = db.session.info.setdefault(_BY_KEY, {})
    by[board.id] = phone if by.get(board.id, phone) == phone else _OFFICER  # two phones' changes: everyone's


def must_show(board_id: int, phone: str) -> int:
    """Return the version a phone's answer must reflect at least: the facilitator's last change to the board,
    and the phone's own last note or vote."""
    return max(_officer_at.get(board_id, 0), _phone_at.get((board_id, phone), 0))


def forget(board_id: int | None = None) -> None:
    """Drop what memory holds (tests; a restored backup): the next poll reads the stored revision."""
    with _lock:
        if board_id is None:
            _versions.clear()
            _officer_at.clear()
            _phone_at.clear()
        else:
            _versions.pop(board_id, None)
            _officer_at.pop(board_id, None)


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    by = session.info.pop(_BY_KEY, None) or {}
    if pending:
        with _lock:
            for board_id, version in pending.items():
                if version > _versions.get(board_id, -1):
                    _versions[board_id] = version
                phone = by.get(board_id, _OFFICER)
                seen = _officer_at if phone == _OFFICER else _phone_at
                key: Any = board_id if phone == _OFFICER else (board_id, phone)
                if version > seen.get(key, -1):
                    seen[key] = version


@event.listens_for(Session, "after_rollback")
def _discard(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_BY_KEY, None)
