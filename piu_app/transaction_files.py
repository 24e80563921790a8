"""Files that belong to a database transaction: written before it commits, they must go if it
rolls back; replaced by it, the old ones go once it commits. Nothing half-written either way.

Used by attachments (services/documents.py) and by the kept manifests of peer cities
(exchange/signing.py): both write files in the data directory next to rows of the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from .extensions import db

_WRITTEN = "piu_written_files"
_UNUSED = "piu_unused_files"


def remove_on_rollback(paths: Iterable[Path]) -> None:
    """Remove these newly written files if the current transaction does not commit."""
    _pending(_WRITTEN).update(paths)


def remove_after_commit(paths: Iterable[Path]) -> None:
    """Remove these files once the current transaction commits (and keep them if it does not)."""
    _pending(_UNUSED).update(paths)


def _pending(key: str) -> set[Path]:
    session = db.session()
    if "piu_file_hooks" not in session.info:
        session.info["piu_file_hooks"] = True
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_transaction_end", _after_transaction_end)
    return session.info.setdefault(key, set())


def _after_commit(session: Session) -> None:
    session.info.pop(_WRITTEN, None)  # they are the files of committed rows now
    for path in session.info.pop(_UNUSED, set()):
        path.unlink(missing_ok=True)


def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is not None:
        return
    # Not committed (rolled back, or the session closed without a commit): keep every file the
    # transaction wanted gone, and remove those it wrote.
    session.info.pop(_UNUSED, None)
    for path in session.info.pop(_WRITTEN, set()):
        path.unlink(missing_ok=True)
