"""The version of each board that phones poll, held in memory so that "nothing new" costs nothing.

Every change a participant can see (a note posted, approved, hidden, moved; a vote; the reveal; the
timer; a theme renamed) calls `bump(board)` inside its transaction. The stored `boards.revision` is
raised with the change, and the in-memory number once the transaction has committed, so that a phone
never sees a version whose content is not readable yet. A poll compares the phone's ETag with
`current(board_id)`: equal → 304, decided without a session, a query or a template.

One process serves both doors (the officer's pages and the room listener), so one dict is enough.
After a restart the first poll of a board reads its stored revision once.
"""

from __future__ import annotations

import threading

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from ..models import Board, db, utcnow

_lock = threading.Lock()
_versions: dict[int, int] = {}
_PENDING_KEY = "piu_board_versions_pending"


def current(board_id: int) -> int:
    """Return the board's committed version (reads the database only the first time after a start)."""
    version = _versions.get(board_id)
    if version is not None:
        return version
    stored = db.session.scalar(select(Board.revision).where(Board.id == board_id)) or 0
    with _lock:
        return _versions.setdefault(board_id, stored)


def bump(board: Board) -> None:
    """Raise the board's version with the change being written (call inside the writing transaction).

    The board's record version rises too: its notes, columns and themes travel with it in bundles,
    and a peer (or a city that relays it) takes a board's new content only with a higher version
    (a note hidden here must disappear there too)."""
    board.revision = (board.revision or 0) + 1
    board.version = (board.version or 0) + 1
    board.updated_at = utcnow()
    pending: dict[int, int] = db.session.info.setdefault(_PENDING_KEY, {})
    pending[board.id] = board.revision


def forget(board_id: int | None = None) -> None:
    """Drop what memory holds (tests; a restored backup): the next poll reads the stored revision."""
    with _lock:
        if board_id is None:
            _versions.clear()
        else:
            _versions.pop(board_id, None)


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    if pending:
        with _lock:
            for board_id, version in pending.items():
                if version > _versions.get(board_id, -1):
                    _versions[board_id] = version


@event.listens_for(Session, "after_rollback")
def _discard(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
