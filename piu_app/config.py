"""Every setting of PIU, declared once with its default and help text.

Settings are read in this order, the later winning: the defaults below, `config.toml` in the
data directory, `PIU_<NAME>` environment variables, then the mapping given to `create_app`
(tests). `docs/settings.md` is checked against this list by a test.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", None,
            "SQLAlchemy URL of the database. Empty: a SQLite file `piu.sqlite3` in the data directory. "
            "A network hub can use `postgresql+psycopg://user:pass@host/db`."),
    Setting("MAX_UPLOAD_MB", 20, "Largest attachment accepted, in megabytes."),
    Setting("PAGE_SIZE", 25, "Rows per page on list pages."),
    Setting("DEFAULT_LOCALE", "fr", "Language of the interface when the user has not chosen one (fr or en)."),
    Setting("LOGIN_MAX_FAILURES", 5,
            "Failed logins allowed for one user name from one address before each new try from there must wait "
            "(the account itself is never locked, and unknown names are counted the same way)."),
    Setting("LOGIN_LOCK_SECONDS", 30,
            "Wait imposed after too many failed logins; doubles at each further failure (capped at 1 hour)."),
    Setting("HOST", "127.0.0.1", "Address the officer's interface listens on. Keep 127.0.0.1: it is not meant for the LAN."),
    Setting("PORT", 5080, "Port of the officer's interface (0 picks a free port)."),
    Setting("SERVER_THREADS", 4, "Worker threads of the waitress server; 4 gave the steadiest response times "
            "at 50 and 200 clients on a 2-core machine (see bench/RESULTS.md)."),
    Setting("SERVER_CONNECTION_LIMIT", 1000,
            "Concurrent connections waitress accepts; keep above the number of phones in a workshop."),
    Setting("SERVER_SWITCH_INTERVAL", 5e-5,
            "Python thread switch interval set before serving, in seconds; a short interval keeps waitress "
            "workers fed under many clients (see bench/RESULTS.md). 0 leaves Python's default."),
    Setting("ROOM_PORT", 5081, "Port of the room listener, the phones' door on the laptop's network (0 picks a free port)."),
    Setting("ROOM_ADDRESSES", "",
            "Addresses the room listener binds, separated by commas. Empty: every private LAN address of the "
            "laptop (IPv4, not loopback, not link-local). The load benchmark uses 127.0.0.1."),
    Setting("ROOM_THREADS", 1,
            "Worker threads of the room listener; 1 served 500 phones with p95 62 ms a post, 4 with p95 960 ms "
            "(one Python process: the threads only compete for the interpreter; see bench/RESULTS.md, \"Room\")."),
    Setting("ROOM_CONNECTION_LIMIT", 1000,
            "Concurrent connections the room listener accepts (on Windows at most 500: select() watches 512 "
            "sockets)."),
    Setting("BACKUP_KEEP", 10, "Automatic backups kept in the data directory before the oldest are removed."),
    Setting("BACKUP_MAX_MB", 2000,
            "Total size, in MB, of the automatic backups kept in the data directory: beyond it the oldest are "
            "removed (the newest is always kept; manual backups never are). 0: no limit."),
    Setting("SECRET_KEY", None,
            "Signs sessions and CSRF tokens. Leave empty: a random key is generated once per install "
            "into `secret_key` in the data directory."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def _coerce(setting: Setting, raw: str) -> Any:
    """Turn an environment string into the type of the setting's default."""
    if isinstance(setting.default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on", "oui"}
    if isinstance(setting.default, int):
        return int(raw)
    if isinstance(setting.default, float):
        return float(raw)
    return raw or None


def load_settings(data_dir: Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the effective settings: defaults, then config.toml, environment, overrides."""
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    config_file = data_dir / "config.toml"
    if config_file.is_file():
        with config_file.open("rb") as fh:
            for key, value in tomllib.load(fh).items():
                if key.upper() in _BY_NAME:
                    values[key.upper()] = value
    for setting in SETTINGS:
        raw = os.environ.get(f"PIU_{setting.name}")
        if raw is not None:
            values[setting.name] = _coerce(setting, raw)
    for key, value in (overrides or {}).items():
        values[key] = value
    return values
