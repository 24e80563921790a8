"""Every filesystem decision: where the data directory is and what lives in it.

Development (running from a source checkout) uses `./instance`; an installed or frozen app uses
the per-user data directory from platformdirs; `PIU_HOME` overrides both. A frozen build never
writes inside its own bundle.
"""

from __future__ import annotations

import os
import sys
from contextlib import suppress
from pathlib import Path

import platformdirs

APP_NAME = "PIU"
PACKAGE_DIR = Path(__file__).resolve().parent


def is_frozen() -> bool:
    """Tell whether we run from a PyInstaller bundle."""
    return bool(getattr(sys, "frozen", False))


def _source_checkout() -> Path | None:
    """Return the checkout root when the package runs from a source tree (not site-packages)."""
    root = PACKAGE_DIR.parent
    if is_frozen() or "site-packages" in root.parts:
        return None
    if (root / "pyproject.toml").is_file() and (root / ".git").exists():
        return root
    return None


def data_dir() -> Path:
    """Return (and create) the directory that holds the database, uploads, backups and logs."""
    if os.environ.get("PIU_HOME"):
        path = Path(os.environ["PIU_HOME"]).expanduser()
    elif (checkout := _source_checkout()) is not None:
        path = checkout / "instance"
    else:
        path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def database_file(base: Path) -> Path:
    return base / "piu.sqlite3"


def uploads_dir(base: Path) -> Path:
    return _ensure(base / "uploads")


def backups_dir(base: Path) -> Path:
    return _ensure(base / "backups")


def logs_dir(base: Path) -> Path:
    return _ensure(base / "logs")


def secret_key_file(base: Path) -> Path:
    return base / "secret_key"


def manifests_dir(base: Path) -> Path:
    """The signed manifests of peer cities, kept to relay their records (see exchange/signing.py)."""
    return base / "manifests"


def lock_file(base: Path) -> Path:
    return base / "piu.lock"


def _ensure(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def protect(base: Path, *, sqlite: bool = True) -> None:
    """Keep the data private to this user: the folder 0700; the database, its -wal/-shm, the secret key
    and the backups 0600 (created so, and tightened if an older version left them readable).

    POSIX only: on Windows `chmod` can only set the read-only flag, and the per-user data folder
    (under %LOCALAPPDATA%) is already private to its user by the folder's access rights.
    """
    if os.name == "nt":
        return
    with suppress(PermissionError):  # a folder someone else owns (PIU_HOME on a shared disk): leave it
        base.chmod(0o700)
    database = database_file(base)
    if sqlite and not database.exists():
        # SQLite creates its -wal and -shm files with the database file's permissions.
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
    private = [database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm"),
               secret_key_file(base)]
    backups = base / "backups"
    if backups.is_dir():
        with suppress(PermissionError):
            backups.chmod(0o700)
        private += [p for p in backups.iterdir() if p.is_file()]
    for path in private:
        with suppress(FileNotFoundError, PermissionError):
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
