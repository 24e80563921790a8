"""Backups of the data directory, taken before anything risky, listed, restored.

A backup is ONE file, `piu-<reason>-<YYYYmmdd-HHMMSS-ffffff>.zip` (local time) in the backups
directory, private to this user (0600): a zip archive (deflate) holding

  piu-backup.json     what the archive holds: format, schema revision, each file's SHA-256
  piu.sqlite3         a consistent copy of the database (online backup API), integrity-checked
  uploads/xx/<sha>    every attachment, named by its SHA-256 as in the uploads folder
  manifests/…         the signed manifests of peer cities, kept to relay their records

The city's private signing key (`signing_key.pem`) is never in a backup: backups are downloaded,
copied to USB sticks and kept by the ten, and whoever holds the key signs bundles as the city.
It is kept apart, by hand (docs/guide.md, "Nouvel ordinateur"); a restore leaves it as it is.

Backups made by earlier versions are bare SQLite files (`….sqlite3`): still listed and restored
(the database only; attachments are then left as they are). PostgreSQL hubs are backed up by their
database server (pg_dump, pg_restore): automatic backups are skipped there, and asking for one or
for a restore is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from flask import current_app, has_app_context
from flask_babel import gettext as _
from sqlalchemy import Engine, inspect

from .. import database, paths
from ..database import (
    BACKUP_TEMP_PREFIX,
    backup_sqlite,
    fsync_dir,
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
_NAME = re.compile(r"^piu-(?P<reason>[a-z]+(?:-[a-z]+)*)-(?P<stamp>\d{8}-\d{6}-\d{6})\.(?:zip|sqlite3)$")
EXTENSION = ".zip"
MANIFEST = "piu-backup.json"
DATABASE = "piu.sqlite3"
FORMAT = 1
COMPRESS_LEVEL = 1  # deflate: about 4x smaller than the database at a quarter of level 6's time
_UPLOAD_MEMBER = re.compile(r"^uploads/([0-9a-f]{2})/([0-9a-f]{64})$")
_MANIFEST_MEMBER = re.compile(r"^manifests/[A-Za-z0-9._-]{1,200}$")
_BLOCK = 1 << 20
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

    @property
    def with_files(self) -> bool:
        """True for an archive (database + attachments); False for a bare database of an earlier version."""
        return self.path.suffix == EXTENSION


@dataclass(frozen=True)
class Restored:
    revision: str  # schema revision of the backup
    upgraded: bool  # the backup was older than this version and its schema was brought up to date
    safety: Path | None  # copy of the database as it was before the restore


def _refuse_postgresql(engine: Engine) -> None:
    if not is_sqlite(engine):
        raise ConflictError(_("Cette base PostgreSQL est sauvegardée par son serveur de base de données : "
                              "utilisez pg_dump et pg_restore."))


def data_dir_of(engine: Engine) -> Path | None:
    """The data directory of the running app, or else the one the SQLite database lives in."""
    if has_app_context() and current_app.config.get("PIU_DATA_DIR"):
        return Path(current_app.config["PIU_DATA_DIR"])
    name = engine.url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name).resolve().parent


def configured_max_bytes() -> int | None:
    """The BACKUP_MAX_MB setting in bytes (None without an application, or when set to 0: no limit)."""
    if not has_app_context():
        return None
    mb = int(current_app.config.get("BACKUP_MAX_MB") or 0)
    return mb * 1024 * 1024 if mb > 0 else None


_CONFIGURED: Any = object()


def take(engine: Engine, backups: Path, *, reason: str, keep: int | None = 10, max_bytes: int | None = _CONFIGURED,
         data_dir: Path | None = None) -> Path | None:
    """Back the data directory up into `backups/` (SQLite only), then rotate the automatic backups.

    Keeps the `keep` most recent of that reason (all if None) and, with `max_bytes`, removes the
    oldest automatic backups while they take more than that together (the newest is always kept;
    manual backups are never removed). Raise BackupFailedError (logged) if the backup cannot be
    written or checked: nothing is then left under a backup's name, so the Backups page, rotation
    and the daily check never see it.
    """
    if not is_sqlite(engine):
        return None
    remove_stale_backup_files(backups)
    target = _write(engine, backups / f"piu-{reason}-{datetime.now().strftime(_STAMP)}{EXTENSION}",
                    data_dir if data_dir is not None else data_dir_of(engine))
    if keep is not None:
        _rotate(backups, reason, keep)
    if max_bytes is _CONFIGURED:
        max_bytes = configured_max_bytes()
    if max_bytes is not None and reason != MANUAL:
        rotate_by_size(backups, max_bytes)
    return target


def _write(engine: Engine, target: Path, data_dir: Path | None) -> Path:
    try:
        return _write_archive(engine, target, data_dir)
    except (OSError, sqlite3.Error, zipfile.BadZipFile) as exc:
        log.error("Backup %s failed: %s", target, exc)
        if is_disk_full(exc):
            raise BackupFailedError(_("Le disque est plein : la sauvegarde n'a pas pu être écrite. Libérez de "
                                      "la place puis recommencez (rien n'a été changé).")) from exc
        raise BackupFailedError(_("La sauvegarde n'a pas pu être écrite (%(error)s) ; rien n'a été changé.",
                                  error=exc.strerror if isinstance(exc, OSError) and exc.strerror
                                  else str(exc))) from exc


def _temp_beside(target: Path, what: str) -> Path:
    """A private temporary name beside `target`, removed by `remove_stale_backup_files` if we are killed."""
    return target.parent / f"{BACKUP_TEMP_PREFIX}{target.name}.{what}.{os.getpid()}-{secrets.token_hex(4)}"


def _data_files(data_dir: Path | None) -> Iterator[tuple[str, Path]]:
    """(name in the archive, file) of the attachments and the peers' manifests (never the signing key)."""
    if data_dir is None:
        return
    uploads = data_dir / "uploads"
    for folder in sorted(uploads.iterdir()) if uploads.is_dir() else ():
        if len(folder.name) == 2 and folder.is_dir() and not folder.is_symlink():
            for file in sorted(folder.iterdir()):
                name = f"uploads/{folder.name}/{file.name}"
                if _UPLOAD_MEMBER.match(name) and file.is_file() and not file.is_symlink():
                    yield name, file
    manifests = paths.manifests_dir(data_dir)
    for file in sorted(manifests.iterdir()) if manifests.is_dir() else ():
        name = f"manifests/{file.name}"
        if _MANIFEST_MEMBER.match(name) and file.is_file() and not file.is_symlink():
            yield name, file


def _add_file(archive: zipfile.ZipFile, name: str, file: Path) -> str:
    """Copy a file into the archive, hashing it on the way (one read); return its SHA-256."""
    digest = hashlib.sha256()
    with file.open("rb") as src, archive.open(name, "w", force_zip64=True) as dest:
        while block := src.read(_BLOCK):
            digest.update(block)
            dest.write(block)
    return digest.hexdigest()


def _write_archive(engine: Engine, target: Path, data_dir: Path | None) -> Path:
    """Write the archive under a temporary name, flush it, read every member back, then rename it."""
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    copy = _temp_beside(target, "db")
    temp = _temp_beside(target, "zip")
    try:
        # the database: online backup API, integrity check and PIU check (database.backup_sqlite)
        backup_sqlite(engine, copy, verify=_check_copy)
        revision = read_sqlite_file(copy).revision
        files: dict[str, str] = {}
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, \
                zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as archive:
            files[DATABASE] = _add_file(archive, DATABASE, copy)
            for name, file in _data_files(data_dir):
                try:
                    digest = _add_file(archive, name, file)
                except FileNotFoundError:
                    continue  # an attachment removed while we copied: the database copy no longer names it
                if name.startswith("uploads/") and digest != name.rsplit("/", 1)[1]:
                    log.warning("Attachment %s is damaged (its bytes are not its digest): left out", name)
                    continue  # the zip keeps the member, the manifest does not: restore ignores it
                files[name] = digest
            archive.writestr(MANIFEST, json.dumps({"format": FORMAT, "application": "PIU", "revision": revision,
                                                   "taken_at": datetime.now().isoformat(timespec="seconds"),
                                                   "files": files}, indent=1))
            raw.flush()
            os.fsync(raw.fileno())
        database._fsync_file(temp)
        with zipfile.ZipFile(temp) as archive:  # every member read back against its CRC
            bad = archive.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"member {bad} does not read back")
        os.replace(temp, target)
        fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    finally:
        with contextlib.suppress(OSError):
            copy.unlink()
    return target


def _check_copy(file: Path) -> None:
    """Refuse a copy that does not read back as a PIU database with a schema revision."""
    content = read_sqlite_file(file)
    if not _PIU_TABLES <= content.tables or content.revision is None:
        raise sqlite3.DatabaseError("the copy is not a PIU database with a schema revision")


def _rotate(backups: Path, reason: str, keep: int, *, spare: Path | None = None) -> None:
    """Remove the backups of `reason` beyond the `keep` most recent (at least one is kept, and `spare`)."""
    mine = sorted((b for b in _parse_all(backups) if b.reason == reason and b.path.resolve() != spare),
                  key=lambda b: b.taken_at)
    for old in mine[:-max(keep, 1)]:
        old.path.unlink(missing_ok=True)


def rotate_by_size(backups: Path, max_bytes: int, *, spare: Path | None = None) -> list[Path]:
    """Remove the oldest automatic backups while all automatic backups take more than `max_bytes`.

    The newest backup is always kept (a register larger than the limit still has one), and so are
    manual backups (asked for by a person, removed by a person) and `spare`. Return what was removed.
    """
    automatic = sorted((b for b in _parse_all(backups) if b.reason != MANUAL), key=lambda b: b.taken_at)
    total = sum(b.size for b in automatic)
    removed = []
    for old in automatic[:-1]:
        if total <= max_bytes:
            break
        if old.path.resolve() == spare:
            continue
        old.path.unlink(missing_ok=True)
        total -= old.size
        removed.append(old.path)
    return removed


def take_manual(engine: Engine, backups: Path, *, out: Path | None = None, data_dir: Path | None = None) -> Path:
    """Back the data directory up now, into `out` or into `backups/` (manual backups are never rotated)."""
    _refuse_postgresql(engine)
    if out is None:
        target = take(engine, backups, reason=MANUAL, keep=None, data_dir=data_dir)
        assert target is not None
        return target
    if out.exists():
        raise ConflictError(_("Le fichier %(path)s existe déjà : choisissez un autre nom.", path=str(out)))
    if not out.parent.is_dir():
        raise InvalidInputError(_("Le dossier %(path)s n'existe pas : créez-le ou choisissez un autre "
                                  "emplacement.", path=str(out.parent)))
    return _write(engine, out, data_dir if data_dir is not None else data_dir_of(engine))


def _parse_all(backups: Path) -> list[Backup]:
    found = []
    for path in backups.glob("piu-*") if backups.is_dir() else ():
        match = _NAME.match(path.name)
        if match and path.is_file():
            found.append(Backup(path, match["reason"], datetime.strptime(match["stamp"], _STAMP),
                                path.stat().st_size, None))
    return found


def _is_archive(file: Path) -> bool:
    with file.open("rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def _read_manifest(archive: zipfile.ZipFile) -> dict:
    try:
        manifest = json.loads(archive.read(MANIFEST))
    except (KeyError, ValueError) as exc:
        raise InvalidInputError(_("Cette archive n'est pas une sauvegarde de PIU.")) from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict) \
            or DATABASE not in manifest["files"] or manifest.get("format") != FORMAT:
        raise InvalidInputError(_("Cette archive n'est pas une sauvegarde de PIU."))
    return manifest


def _revision_of(path: Path) -> str | None:
    """The schema revision a backup says it has, read cheaply (None if the file cannot be read)."""
    try:
        if _is_archive(path):
            with zipfile.ZipFile(path) as archive:
                return _read_manifest(archive).get("revision")
        return read_sqlite_file(path).revision
    except (OSError, sqlite3.Error, zipfile.BadZipFile, InvalidInputError):
        return None


def list_backups(backups: Path) -> list[Backup]:
    """Return the backups in `backups/`, newest first, with the schema revision read from each file."""
    return [Backup(b.path, b.reason, b.taken_at, b.size, _revision_of(b.path))
            for b in sorted(_parse_all(backups), key=lambda b: b.taken_at, reverse=True)]


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


@dataclass
class _Opened:
    database: Path  # the database to check and copy (the backup itself, or extracted from the archive)
    archive: zipfile.ZipFile | None
    files: dict[str, str]  # archive member -> SHA-256 (empty for an old-format backup)


def _extract_checked(archive: zipfile.ZipFile, name: str, digest: str, dest: Path) -> None:
    """Extract one member to `dest` (private, flushed), refusing bytes that are not its SHA-256."""
    h = hashlib.sha256()
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out, archive.open(name) as src:
            while block := src.read(_BLOCK):
                h.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != digest:
            raise InvalidInputError(_("La sauvegarde est endommagée (%(name)s ne correspond pas à son empreinte) : "
                                      "rien n'a été changé.", name=name))
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _open(file: Path, scratch: Path) -> Iterator[_Opened]:
    """Open a backup of either format; an archive's database is extracted (checked) into `scratch`."""
    if not file.is_file():
        raise InvalidInputError(_("Le fichier %(path)s n'existe pas.", path=str(file)))
    try:
        is_archive = _is_archive(file)
    except OSError as exc:
        raise InvalidInputError(_("%(name)s n'est pas lisible.", name=file.name)) from exc
    if not is_archive:
        yield _Opened(file, None, {})
        return
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    extracted = _temp_beside(scratch / file.name, "restore")
    try:
        try:
            archive = zipfile.ZipFile(file)
        except zipfile.BadZipFile as exc:
            raise InvalidInputError(_("%(name)s n'est pas une sauvegarde lisible (archive endommagée).",
                                      name=file.name)) from exc
        with archive:
            manifest = _read_manifest(archive)
            try:
                _extract_checked(archive, DATABASE, manifest["files"][DATABASE], extracted)
            except (KeyError, zipfile.BadZipFile, OSError) as exc:
                raise InvalidInputError(_("%(name)s n'est pas une sauvegarde lisible (archive endommagée).",
                                          name=file.name)) from exc
            yield _Opened(extracted, archive, {k: v for k, v in manifest["files"].items() if k != DATABASE})
    finally:
        extracted.unlink(missing_ok=True)


def _check_database(database_file: Path, shown_name: str) -> str:
    try:
        content = read_sqlite_file(database_file, check=True)
    except sqlite3.Error as exc:
        raise InvalidInputError(_("%(name)s n'est pas une base de données lisible (fichier d'un autre type, "
                                  "ou endommagé).", name=shown_name)) from exc
    if not _PIU_TABLES <= content.tables or content.revision is None:
        raise InvalidInputError(_("%(name)s n'est pas une sauvegarde de PIU.", name=shown_name))
    if content.revision not in _revisions()[0]:
        raise ConflictError(_("%(name)s a été faite par une version plus récente de PIU (schéma %(rev)s) : "
                              "installez cette version pour la restaurer.", name=shown_name, rev=content.revision))
    return content.revision


def check_file(file: Path, scratch: Path | None = None) -> str:
    """Return the schema revision of a PIU backup; refuse anything else, or a backup made by a newer version.

    An archive's database is extracted to check it, into `scratch` (default: beside the file when
    that folder is writable, else the temporary folder)."""
    if scratch is None:
        scratch = file.parent if os.access(file.parent, os.W_OK) else Path(tempfile.gettempdir())
    with _open(file, scratch) as opened:
        return _check_database(opened.database, file.name)


@contextlib.contextmanager
def database_of(file: Path, scratch: Path) -> Iterator[Path]:
    """The database file of a backup of either format (extracted into `scratch` for the time of the block)."""
    with _open(file, scratch) as opened:
        yield opened.database


class _Files:
    """Bring a backup's attachments and peer manifests into the data directory, all or nothing.

    Attachments are content-addressed: the missing ones are added (written to a temporary name,
    checked against their digest, renamed) before the database is replaced, so that a failure or a
    kill at any moment leaves at worst files that no record names; those the restored database no
    longer names are removed only once it is in place (`finish`).
    """

    def __init__(self, opened: _Opened, data_dir: Path) -> None:
        self.opened, self.data_dir = opened, data_dir
        self.uploads = data_dir / "uploads"
        self.added: list[Path] = []
        self.staged: list[tuple[Path, Path]] = []  # (temporary, final) for the manifests

    def stage(self) -> None:
        archive = self.opened.archive
        assert archive is not None
        # temporary files of a restore killed half-way, in the folders it writes to
        for folder in (*(self.uploads.iterdir() if self.uploads.is_dir() else ()),
                       paths.manifests_dir(self.data_dir)):
            if folder.is_dir():
                remove_stale_backup_files(folder)
        try:
            for name, digest in self.opened.files.items():
                if match := _UPLOAD_MEMBER.match(name):
                    if digest != match[2]:
                        raise InvalidInputError(_("La sauvegarde est endommagée (%(name)s) : rien n'a été changé.",
                                                  name=name))
                    final = self.uploads / match[1] / match[2]
                    if final.is_file() and not final.is_symlink() and _sha256(final) == digest:
                        continue
                    final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                    temp = _temp_beside(final, "restore")
                    _extract_checked(archive, name, digest, temp)
                    os.replace(temp, final)
                    self.added.append(final)
                elif _MANIFEST_MEMBER.match(name):
                    final = self.data_dir / name
                    final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                    temp = _temp_beside(final, "restore")
                    _extract_checked(archive, name, digest, temp)
                    self.staged.append((temp, final))
        except BaseException:
            self.undo()
            raise

    def undo(self) -> None:
        for path in self.added:
            path.unlink(missing_ok=True)
        for temp, _final in self.staged:
            temp.unlink(missing_ok=True)

    def finish(self) -> None:
        """The database is in place: install the manifests, remove attachments it does not name."""
        manifests = paths.manifests_dir(self.data_dir)
        kept = {final for _temp, final in self.staged}
        for temp, final in self.staged:
            os.replace(temp, final)
        for old in manifests.iterdir() if manifests.is_dir() else ():
            if old.is_file() and old not in kept:
                old.unlink(missing_ok=True)  # a peer manifest the backup did not have
        wanted = {self.uploads / m[1] / m[2] for name in self.opened.files if (m := _UPLOAD_MEMBER.match(name))}
        for folder in self.uploads.iterdir() if self.uploads.is_dir() else ():
            for file in folder.iterdir() if folder.is_dir() and len(folder.name) == 2 else ():
                if _UPLOAD_MEMBER.match(f"uploads/{folder.name}/{file.name}") and file not in wanted:
                    file.unlink(missing_ok=True)
        for folder in (self.uploads, manifests, self.data_dir):
            if folder.is_dir():
                fsync_dir(folder)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def restore(engine: Engine, file: Path, backups: Path, *, keep: int | None = 10, data_dir: Path | None = None) -> Restored:
    """Replace the database, the attachments and the peers' manifests by a backup's, after a safety
    backup of the current state; all or nothing (the signing key, never in a backup, stays).

    Ends the caller's session first (its transaction would hold the lock the copy needs, and what it
    read is about to be replaced). A backup from an older version is brought to the current schema.
    A backup of the former kind (a bare SQLite file) brings the database back and leaves the files.
    """
    _refuse_postgresql(engine)
    data_dir = data_dir if data_dir is not None else data_dir_of(engine)
    with _open(file, backups) as opened:
        revision = _check_database(opened.database, file.name)
        db.session.close()
        safety = None
        if inspect(engine).has_table("instance_settings"):  # an empty database has nothing to keep
            safety = take(engine, backups, reason=BEFORE_RESTORE, keep=None, data_dir=data_dir)
        files = _Files(opened, data_dir) if opened.archive is not None and data_dir is not None else None
        if files is not None:
            try:
                files.stage()
            except (OSError, zipfile.BadZipFile) as exc:
                raise ConflictError(_("La restauration a échoué et rien n'a été modifié : %(error)s",
                                      error=str(exc))) from exc
        try:
            restore_sqlite(engine, opened.database)
        except (sqlite3.Error, OSError) as exc:
            if files is not None:
                files.undo()
            raise ConflictError(_("La restauration a échoué et la base n'a pas été modifiée : %(error)s",
                                  error=str(exc))) from exc
        if files is not None:
            files.finish()
    if keep is not None:
        _rotate(backups, BEFORE_RESTORE, keep, spare=file.resolve())
    upgraded = revision != _revisions()[1]
    if upgraded:
        from .. import upgrade_database

        upgrade_database(current_app._get_current_object(), backup=False)  # type: ignore[attr-defined]
    return Restored(revision, upgraded, safety)
