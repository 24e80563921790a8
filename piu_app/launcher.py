"""Start PIU on this computer: data directory, lock, database upgrade, waitress, browser.

Kept small and testable: every step is a function, and `serve` accepts port 0 (tests).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import urllib.request
import webbrowser
from contextlib import suppress
from logging.handlers import RotatingFileHandler
from pathlib import Path

from flask import Flask

from . import create_app, paths, upgrade_database

log = logging.getLogger("piu")


def setup_logging(data_dir: Path) -> None:
    """Log to `logs/piu.log` in the data directory (a windowed build has no console) and to stderr."""
    root = logging.getLogger()
    if any(isinstance(h, RotatingFileHandler) for h in root.handlers):
        return
    handler = RotatingFileHandler(paths.logs_dir(data_dir) / "piu.log", maxBytes=2_000_000, backupCount=3,
                                  encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    if sys.stderr is not None:
        console = logging.StreamHandler()
        console.addFilter(_quiet_migrations)
        root.addHandler(console)
    root.setLevel(logging.INFO)


def _quiet_migrations(record: logging.LogRecord) -> bool:
    """Keep Alembic's routine lines (« Context impl SQLiteImpl », each step of an upgrade) out of the
    console, where every `piu` command showed them: they stay in the log file; a warning still shows."""
    return record.levelno >= logging.WARNING or not record.name.startswith(("alembic", "flask_migrate"))


class InstanceLock:
    """A per-data-directory lock: one running copy per register, the others open the browser on it."""

    def __init__(self, data_dir: Path) -> None:
        self.path = paths.lock_file(data_dir)
        self._fh = None

    def acquire(self) -> bool:
        self._fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the process lifetime
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(self._fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.close()
            self._fh = None
            return False
        return True

    def record(self, url: str) -> None:
        assert self._fh is not None
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(json.dumps({"pid": os.getpid(), "url": url}))
        self._fh.flush()

    def running_url(self) -> str | None:
        with suppress(OSError, ValueError):
            return json.loads(self.path.read_text(encoding="utf-8")).get("url")
        return None

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _is_alive(url: str) -> bool:
    with suppress(OSError, ValueError):
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310 - our own loopback URL
            return response.status == 200
    return False


def prepare(data_dir: Path | None = None) -> Flask:
    """Build the app on its data directory and bring the database up to date (backup first)."""
    app = create_app(instance_path=data_dir)
    setup_logging(app.config["PIU_DATA_DIR"])
    upgrade_database(app)
    return app


def start_daily_backup(app: Flask) -> threading.Thread:
    """Take today's first backup in the background, so that it never delays the start (see daily_backup)."""
    thread = threading.Thread(target=daily_backup, args=(app,), name="piu-daily-backup", daemon=True)
    thread.start()
    return thread


def daily_backup(app: Flask) -> None:
    """Take today's first backup; a failure is logged and never stops PIU (retried at the next start).

    Runs beside the server: the copy is a read transaction (WAL: pages and writes go on), and a
    backup cut short when PIU is closed leaves only a temporary file, removed by a later backup."""
    from datetime import date

    from .extensions import db
    from .services import DomainError, backups

    with app.app_context():
        from .services import instance as instance_service

        if instance_service.current() is None:
            return  # nothing to protect yet
    today = date.today().strftime("%Y%m%d")
    if not any(p.name.startswith(f"piu-daily-{today}") for p in app.config["PIU_BACKUPS_DIR"].glob("piu-daily-*")):
        with app.app_context():
            try:
                backups.take(db.engine, app.config["PIU_BACKUPS_DIR"], reason="daily", keep=app.config["BACKUP_KEEP"])
            except DomainError as exc:
                log.warning("Daily backup skipped, retried at the next start: %s", exc.message)
            finally:
                db.session.remove()


def serve(app: Flask, *, host: str, port: int, open_browser: bool, lock: InstanceLock | None = None,
          daily: bool = True) -> None:
    """Serve the app with waitress until interrupted; once the socket is bound, open the browser and
    start the day's first backup in the background (`daily`)."""
    from waitress.server import create_server

    interval = float(app.config["SERVER_SWITCH_INTERVAL"])
    if interval > 0:
        # Keeps waitress workers fed under many clients: see bench/RESULTS.md ("server").
        sys.setswitchinterval(interval)
    server = create_server(app, host=host, port=port, threads=int(app.config["SERVER_THREADS"]),
                           connection_limit=int(app.config["SERVER_CONNECTION_LIMIT"]),
                           channel_timeout=60, ident="PIU",
                           # poll() instead of select(): select cannot watch more than 1 024 sockets
                           asyncore_use_poll=True)
    bound_port = server.effective_port  # type: ignore[union-attr]
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{bound_port}"
    if lock is not None:
        lock.record(url)
    log.info("PIU %s — data in %s", url, app.config["PIU_DATA_DIR"])
    print(f"PIU est prêt : {url}  (données : {app.config['PIU_DATA_DIR']}) — Ctrl+C pour arrêter", flush=True)
    if open_browser:
        threading.Timer(0.3, webbrowser.open, args=(url,)).start()
    if daily:
        start_daily_backup(app)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def main(*, host: str | None = None, port: int | None = None, open_browser: bool = True) -> int:
    """Desktop start: if this register already runs, open the browser on it; else start it."""
    data_dir = paths.data_dir()
    lock = InstanceLock(data_dir)
    if not lock.acquire():
        url = lock.running_url()
        if url and _is_alive(url):
            print(f"PIU tourne déjà : {url}", flush=True)
            if open_browser:
                webbrowser.open(url)
            return 0
        print("Un autre PIU utilise ce dossier de données et ne répond pas. Fermez-le puis recommencez.",
              file=sys.stderr)
        return 1
    try:
        app = prepare(data_dir)
        serve(app, host=host or app.config["HOST"], port=app.config["PORT"] if port is None else port,
              open_browser=open_browser, lock=lock)
    finally:
        lock.release()
    return 0
