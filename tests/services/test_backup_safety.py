"""Backups are backups: killed, disk-full or failed ones leave nothing under a backup's name, and files stay private.

Written from issue 10, item 5 ("a killed or disk-full backup leaves a partial or empty file under its
final name; the Backups page lists it, rotation counts it; a failed daily backup stops the real one
for the rest of the day"), item 10 (full disk) and the Low item (database and backups 0644).
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from piu_app import create_app, database
from piu_app.cli import main
from piu_app.database import BACKUP_TEMP_PREFIX, writing
from piu_app.extensions import db
from piu_app.services import DomainError, backups

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX permissions and fork")


@pytest.fixture
def sqlite_app(app: Flask) -> Flask:
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("SQLite backups")
    return app


def _final_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith("piu-"))


def _partials(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{BACKUP_TEMP_PREFIX}*"))


def _assert_every_final_file_is_a_good_backup(folder: Path, checked: set | None = None) -> None:
    """Check every backup under a final name; with `checked`, skip a file already found good whose inode,
    size and modification time have not changed since (each check reads 40 MB twice: checking the same
    surviving files after every kill was most of this suite's longest test)."""
    for path in _final_files(folder):
        seen = path.stat()
        identity = (path.name, seen.st_ino, seen.st_size, seen.st_mtime_ns)
        if checked is not None and identity in checked:
            continue
        backups.check_file(path)  # the restore check: a readable PIU database of a known schema
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None, path  # every member reads back against its CRC
        with backups.database_of(path, folder.parent / "check") as database, \
                contextlib.closing(sqlite3.connect(database.resolve().as_uri() + "?mode=ro&immutable=1", uri=True)) as c:
            assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok", path
            assert c.execute("SELECT count(*) FROM filler").fetchone()[0] == 40, path
        if checked is not None:
            checked.add(identity)


_ZYGOTE = r"""
import os, signal, sys
from pathlib import Path
from sqlalchemy import create_engine
from piu_app.services import backups
source, folder = sys.argv[1], Path(sys.argv[2])
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the system
print("ready", flush=True)
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        engine = create_engine(f"sqlite:///{source}")
        try:
            while True:
                backups.take(engine, folder, reason="daily", keep=2)
        finally:
            os._exit(1)
    print(pid, flush=True)
"""


@posix_only
def test_kill_9_during_backups_never_leaves_a_bad_file_under_a_final_name(sqlite_app, ctx, tmp_path):
    """The acceptance test: 30 backups killed with SIGKILL at varied moments of the copy and the check."""
    source = Path(sqlite_app.config["PIU_DATA_DIR"]) / "piu.sqlite3"
    db.session.close()
    with contextlib.closing(sqlite3.connect(source)) as conn, conn:
        conn.execute("CREATE TABLE filler (data BLOB)")  # ~40 MB: the kill lands mid-copy
        conn.executemany("INSERT INTO filler VALUES (randomblob(1000000))", [()] * 40)
    folder = tmp_path / "backups"
    started = time.perf_counter()
    backups.take(db.engine, folder, reason="probe", keep=None)
    one_backup = time.perf_counter() - started
    for p in folder.iterdir():
        p.unlink()

    zygote = subprocess.Popen([sys.executable, "-c", _ZYGOTE, str(source), str(folder)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    rng = random.Random(10)
    killed_mid_copy = 0
    checked: set = set()
    try:
        assert zygote.stdout.readline().strip() == "ready"
        for _run in range(30):
            zygote.stdin.write("go\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            time.sleep(rng.uniform(0.0, 2.5 * one_backup))  # varied: before, during, between backups
            os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                while True:  # wait until the process is gone
                    os.kill(pid, 0)
                    time.sleep(0.005)
            killed_mid_copy += bool(_partials(folder))
            _assert_every_final_file_is_a_good_backup(folder, checked)
            assert all(b.revision is not None for b in backups.list_backups(folder))
            for partial in _partials(folder):  # as if an hour had passed: the next backup cleans up
                os.utime(partial, (time.time() - 7200, time.time() - 7200))
    finally:
        zygote.kill()
        zygote.wait()
    assert killed_mid_copy >= 5, "the kills must land while a backup is being written"
    backups.take(db.engine, folder, reason="daily", keep=2)  # a leftover of a killed run is removed
    assert not _partials(folder)
    _assert_every_final_file_is_a_good_backup(folder)


@pytest.mark.parametrize("point", ["open", "copy", "fsync", "rename"])
def test_a_disk_full_backup_leaves_nothing_and_says_so(sqlite_app, ctx, tmp_path, monkeypatch, point):
    folder = tmp_path / "backups"
    backups.take(db.engine, folder, reason=backups.DAILY)
    before = sorted(p.name for p in folder.iterdir())

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if point == "open":
        real_open = os.open
        monkeypatch.setattr(database.os, "open", lambda path, *a, **k: full() if BACKUP_TEMP_PREFIX in str(path)
                            else real_open(path, *a, **k))
    elif point == "copy":
        class FullConnection:  # what the backup API answers when the disk fills during the copy
            def backup(self, _dest):
                raise sqlite3.OperationalError("database or disk is full")

        real_raw = db.engine.raw_connection

        class Raw:
            def __init__(self):
                self._raw = real_raw()
                self.driver_connection = FullConnection()

            def close(self):
                self._raw.close()
        monkeypatch.setattr(db.engine, "raw_connection", Raw)
    elif point == "fsync":
        monkeypatch.setattr(database, "_fsync_file", full)
    else:
        monkeypatch.setattr(database.os, "replace", full)
    with pytest.raises(backups.BackupFailedError, match="Le disque est plein"):
        backups.take(db.engine, folder, reason=backups.DAILY)
    assert sorted(p.name for p in folder.iterdir()) == before  # no partial file, nothing new


@posix_only
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_really_full_disk(sqlite_app, ctx, tmp_path):
    """A backups folder on a 1 MB tmpfs, for a database larger than that: a real ENOSPC / SQLITE_FULL."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with writing():
            db.session.execute(db.text("CREATE TABLE filler (data BLOB)"))
            db.session.execute(db.text("INSERT INTO filler SELECT randomblob(100000) FROM "
                                       "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30) "
                                       "SELECT i FROM n)"))
            db.session.commit()
        with pytest.raises(backups.BackupFailedError, match="Le disque est plein"):
            backups.take(db.engine, mount, reason=backups.DAILY)
        assert list(mount.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_failed_check_leaves_nothing(sqlite_app, ctx, tmp_path, monkeypatch):
    monkeypatch.setattr(backups, "_check_copy", lambda _p: (_ for _ in ()).throw(sqlite3.DatabaseError("bad")))
    with pytest.raises(backups.BackupFailedError, match="n'a pas pu être écrite"):
        backups.take(db.engine, tmp_path / "b", reason=backups.MANUAL)
    assert list((tmp_path / "b").iterdir()) == []


def test_a_fresh_leftover_is_kept_an_old_one_removed(sqlite_app, ctx, tmp_path):
    """A temporary file may be a backup still running in another process (`piu backup` while PIU serves)."""
    fresh, old = tmp_path / f"{BACKUP_TEMP_PREFIX}a", tmp_path / f"{BACKUP_TEMP_PREFIX}b"
    fresh.write_bytes(b"x")
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    backups.take(db.engine, tmp_path, reason=backups.DAILY)
    assert fresh.exists() and not old.exists()
    assert [b.reason for b in backups.list_backups(tmp_path)] == ["daily"]


# --------------------------------------------------------------------------- start-up and the commands

# `home`: a configured data directory named by PIU_HOME (tests/conftest.py)


def _disk_full_on_backup(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*_args, **_kwargs):
        raise sqlite3.OperationalError("database or disk is full")
    monkeypatch.setattr(database, "_fsync_file", full)


def test_start_up_goes_on_when_the_daily_backup_fails_and_retries_next_time(home, monkeypatch, caplog):
    from piu_app import launcher

    monkeypatch.setattr(launcher, "setup_logging", lambda _dir: None)
    _disk_full_on_backup(monkeypatch)
    app = launcher.prepare(home)
    launcher.daily_backup(app)  # does not raise: PIU goes on (serve() runs it in the background)
    with app.app_context():
        db.engine.dispose()
    assert not list((home / "backups").iterdir()), "nothing under a daily backup's name"
    assert "Daily backup skipped" in caplog.text and "Le disque est plein" in caplog.text
    monkeypatch.undo()
    monkeypatch.setenv("PIU_HOME", str(home))
    monkeypatch.setattr(launcher, "setup_logging", lambda _dir: None)
    app = launcher.prepare(home)  # the disk has room again: today's backup is taken at this start
    launcher.daily_backup(app)
    with app.app_context():
        db.engine.dispose()
    assert [b.reason for b in backups.list_backups(home / "backups")] == ["daily"]


def test_cli_backup_on_a_full_disk_says_so_in_one_sentence(home, monkeypatch):
    _disk_full_on_backup(monkeypatch)
    result = CliRunner().invoke(main, ["backup"])
    assert result.exit_code != 0
    assert "Le disque est plein" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not list((home / "backups").iterdir())
    monkeypatch.setenv("PIU_DEFAULT_LOCALE", "en")
    result = CliRunner().invoke(main, ["backup"])
    assert result.exit_code != 0 and "The disk is full" in result.output


def test_cli_backup_into_a_missing_folder_is_refused_clearly(home, tmp_path):
    result = CliRunner().invoke(main, ["backup", "--out", str(tmp_path / "missing" / "copy.sqlite3")])
    assert result.exit_code != 0 and "n'existe pas" in result.output and "Traceback" not in result.output


# --------------------------------------------------------------------------- private files

@posix_only
def test_data_directory_database_secret_key_and_backups_are_private(home):
    app = create_app({"TESTING": True}, instance_path=home)
    with app.app_context():
        backups.take_manual(db.engine, home / "backups")
        db.engine.dispose()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "backups").stat().st_mode) == 0o700
    for path in [home / "piu.sqlite3", home / "secret_key", *(home / "backups").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in home.glob("piu.sqlite3-*"):  # -wal and -shm, when present
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


@posix_only
def test_an_older_install_left_readable_is_tightened_at_start(home):
    for path in [home, home / "backups"]:
        path.chmod(0o755)
    loose = [home / "piu.sqlite3", home / "secret_key"]
    (home / "backups" / "piu-manual-20200101-000000-000000.sqlite3").write_bytes(b"")
    loose.append(home / "backups" / "piu-manual-20200101-000000-000000.sqlite3")
    for path in loose:
        path.chmod(0o644)
    app = create_app({"TESTING": True}, instance_path=home)
    with app.app_context():
        db.engine.dispose()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for path in loose:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_domain_error_is_what_callers_catch(sqlite_app, ctx, tmp_path, monkeypatch):
    _disk_full_on_backup(monkeypatch)
    with pytest.raises(DomainError):
        backups.take(db.engine, tmp_path, reason=backups.IMPORT)
