"""Copies of the database kept in the data directory: taken before anything risky, listed, restored.

A backup is a SQLite file named `piu-<reason>-<YYYYmmdd-HHMMSS-ffffff>.sqlite3` (local time) in the
backups directory. PostgreSQL hubs are backed up by their database server (pg_dump, pg_restore):
automatic backups are skipped there, and asking for one or for a restore is refused.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Engine, inspect

from ..database import (
    backup_sqlite,
    is_disk_full,
    is_sqlite,
    read_sqlite_file,
    remove_stale_backup_files,
    restore_sqlite,
)
from ..models import db
from . import ConflictError, InvalidInputError, NotFoundError

DAILY, IMPORT, MIGRATION, MANUAL, BEFORE_RESTORE = "daily", "import", "migration", "manual", "before-restore"
REASONS = (DAILY, IMPORT, MIGRATION, MANUAL, BEFORE_RESTORE)
_NAME = re.compile(r"^piu-(?P<reason>[a-z]+(?:-[a-z]+)*)-(?P<stamp>\d{8}-\d{6}-\d{6})\.sqlite3$")
_STAMP = "%Y%m%d-%H%M%S-%f"
# Tables every PIU database has had since its first release.
_PIU_TABLES = frozenset({"alembic_version", "instance_settings"})
log = logging.getLogger(__name__)


class BackupFailedError(ConflictError):
    """A backup could not be written; nothing was left under a backup's name."""


@dataclass(frozen=True)
class Backup:
    path: Path
    reason: str
    taken_at: datetime  # local time of the computer that took it
    size: int  # bytes
    revision: str | None  # schema revision, None if the file cannot be read

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Restored:
    revision: str  # schema revision of the backup
    upgraded: bool  # the backup was older than this version and its schema was brought up to date
    safety: Path | None  # copy of the database as it was before the restore


def _refuse_postgresql(engine: Engine) -> None:
    if not is_sqlite(engine):
        raise ConflictError(_("Cette base PostgreSQL est sauvegardée par son serveur de base de données : "
                              "utilisez pg_dump et pg_restore."))


def take(engine: Engine, backups: Path, *, reason: str, keep: int | None = 10) -> Path | None:
    """Copy the database to `backups/` (SQLite only) and keep the `keep` most recent of that reason (all if None).

    Raise BackupFailedError (logged) if the copy cannot be written or checked: nothing is then
    left under a backup's name, so the Backups page, rotation and the daily check never see it.
    """
    if not is_sqlite(engine):
        return None
    remove_stale_backup_files(backups)
    target = _write(engine, backups / f"piu-{reason}-{datetime.now().strftime(_STAMP)}.sqlite3")
    if keep is not None:
        _rotate(backups, reason, keep)
    return target


def _write(engine: Engine, target: Path) -> Path:
    try:
        return backup_sqlite(engine, target, verify=_check_copy)
    except (OSError, sqlite3.Error) as exc:
        log.error("Backup %s failed: %s", target, exc)
        if is_disk_full(exc):
            raise BackupFailedError(_("Le disque est plein : la sauvegarde n'a pas pu être écrite. Libérez de "
                                      "la place puis recommencez (rien n'a été changé).")) from exc
        raise BackupFailedError(_("La sauvegarde n'a pas pu être écrite (%(error)s) ; rien n'a été changé.",
                                  error=exc.strerror if isinstance(exc, OSError) and exc.strerror
                                  else str(exc))) from exc


def _check_copy(file: Path) -> None:
    """Refuse a copy that does not read back as a PIU database with a schema revision."""
    content = read_sqlite_file(file)
    if not _PIU_TABLES <= content.tables or content.revision is None:
        raise sqlite3.DatabaseError("the copy is not a PIU database with a schema revision")


def _rotate(backups: Path, reason: str, keep: int, *, spare: Path | None = None) -> None:
    """Remove the backups of `reason` beyond the `keep` most recent (at least one is kept, and `spare`)."""
    mine = sorted(b.path for b in _parse_all(backups) if b.reason == reason and b.path.resolve() != spare)
    for old in mine[:-max(keep, 1)]:
        old.unlink(missing_ok=True)


def take_manual(engine: Engine, backups: Path, *, out: Path | None = None) -> Path:
    """Back the database up now, into `out` or into `backups/` (manual backups are never rotated)."""
    _refuse_postgresql(engine)
    if out is None:
        target = take(engine, backups, reason=MANUAL, keep=None)
        assert target is not None
        return target
    if out.exists():
        raise ConflictError(_("Le fichier %(path)s existe déjà : choisissez un autre nom.", path=str(out)))
    if not out.parent.is_dir():
        raise InvalidInputError(_("Le dossier %(path)s n'existe pas : créez-le ou choisissez un autre "
                                  "emplacement.", path=str(out.parent)))
    return _write(engine, out)


def _parse_all(backups: Path) -> list[Backup]:
    found = []
    for path in backups.glob("piu-*.sqlite3") if backups.is_dir() else ():
        match = _NAME.match(path.name)
        if match and path.is_file():
            found.append(Backup(path, match["reason"], datetime.strptime(match["stamp"], _STAMP),
                                path.stat().st_size, None))
    return found


def list_backups(backups: Path) -> list[Backup]:
    """Return the backups in `backups/`, newest first, with the schema revision read from each file."""
    listed = []
    for b in sorted(_parse_all(backups), key=lambda b: b.taken_at, reverse=True):
        try:
            revision = read_sqlite_file(b.path).revision
        except sqlite3.Error:
            revision = None
        listed.append(Backup(b.path, b.reason, b.taken_at, b.size, revision))
    return listed


def find(backups: Path, name: str) -> Backup:
    """Return the backup listed under `name` (only listed names: a path never reaches the disk)."""
    for b in list_backups(backups):
        if b.name == name:
            return b
    raise NotFoundError(_("Sauvegarde introuvable."))


@cache
def _revisions() -> tuple[frozenset[str], str | None]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from .. import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR)
    script = ScriptDirectory.from_config(config)
    return frozenset(s.revision for s in script.walk_revisions()), script.get_current_head()


def check_file(file: Path) -> str:
    """Return the schema revision of a PIU backup; refuse anything else, or a backup made by a newer version."""
    if not file.is_file():
        raise InvalidInputError(_("Le fichier %(path)s n'existe pas.", path=str(file)))
    try:
        content = read_sqlite_file(file, check=True)
    except sqlite3.Error as exc:
        raise InvalidInputError(_("%(name)s n'est pas une base de données lisible (fichier d'un autre type, "
                                  "ou endommagé).", name=file.name)) from exc
    if not _PIU_TABLES <= content.tables or content.revision is None:
        raise InvalidInputError(_("%(name)s n'est pas une sauvegarde de PIU.", name=file.name))
    if content.revision not in _revisions()[0]:
        raise ConflictError(_("%(name)s a été faite par une version plus récente de PIU (schéma %(rev)s) : "
                              "installez cette version pour la restaurer.", name=file.name, rev=content.revision))
    return content.revision


def restore(engine: Engine, file: Path, backups: Path, *, keep: int | None = 10) -> Restored:
    """Replace the live database by the backup `file`, after a safety backup of the current one.

    Ends the caller's session first (its transaction would hold the lock the copy needs, and what it
    read is about to be replaced). A backup from an older version is brought to the current schema.
    """
    _refuse_postgresql(engine)
    revision = check_file(file)
    db.session.close()
    safety = None
    if inspect(engine).has_table("instance_settings"):  # an empty database has nothing to keep
        safety = take(engine, backups, reason=BEFORE_RESTORE, keep=None)
    try:
        restore_sqlite(engine, file)
    except sqlite3.Error as exc:
        raise ConflictError(_("La restauration a échoué et la base n'a pas été modifiée : %(error)s",
                              error=str(exc))) from exc
    if keep is not None:
        _rotate(backups, BEFORE_RESTORE, keep, spare=file.resolve())
    upgraded = revision != _revisions()[1]
    if upgraded:
        from .. import upgrade_database

        upgrade_database(current_app._get_current_object(), backup=False)  # type: ignore[attr-defined]
    return Restored(revision, upgraded, safety)
