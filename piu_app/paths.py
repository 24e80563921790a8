"""Every filesystem decision: where the data directory is and what lives in it.

Development (running from a source checkout) uses `./instance`; an installed or frozen app uses
the per-user data directory from platformdirs; `PIU_HOME` overrides both. A frozen build never
writes inside its own bundle.
"""

from __future__ import annotations

import os
import sys
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
    path.mkdir(parents=True, exist_ok=True)
    return path
