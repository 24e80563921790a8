"""Copies of the database kept in the data directory, taken before anything risky."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from ..database import backup_sqlite, is_sqlite


def take(engine: Engine, backups: Path, *, reason: str, keep: int = 10) -> Path | None:
    """Copy the database to `backups/` (SQLite only) and keep the `keep` most recent of that reason."""
    if not is_sqlite(engine):
        return None
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    target = backup_sqlite(engine, backups / f"piu-{reason}-{stamp}.sqlite3")
    for old in sorted(backups.glob(f"piu-{reason}-*.sqlite3"))[:-keep]:
        old.unlink(missing_ok=True)
    return target
