"""Backups: taken with rotation, listed, restored (refused when unsafe), and the `piu backup` / `piu restore` commands."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sqlite3
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from piu_app import create_app
from piu_app.cli import main
from piu_app.extensions import db
from piu_app.launcher import InstanceLock
from piu_app.services import ConflictError, InvalidInputError, NotFoundError, backups
from piu_app.services import instance as instance_service
from piu_app.services import users as user_service


@pytest.fixture
def sqlite_app(app: Flask) -> Flask:
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("SQLite backups; PostgreSQL is covered by test_postgresql_is_refused")
    return app


def _dump(path: Path) -> list[str]:
    """Every table's schema and rows, as SQL (the content of a database, or of a backup's, whatever its page layout)."""
    with backups.database_of(path, path.parent) as file, contextlib.closing(sqlite3.connect(file)) as conn:
        return list(conn.iterdump())


def edit_backup_database(path: Path, sql: str, *params: object) -> None:
    """Change the database inside a backup (archive or bare SQLite file), keeping the archive consistent."""
    if not zipfile.is_zipfile(path):
        with contextlib.closing(sqlite3.connect(path)) as conn, conn:
            conn.execute(sql, params)
        return
    work = path.with_name(path.name + ".edit")
    with zipfile.ZipFile(path) as archive:
        archive.extract(backups.DATABASE, work)
        members = {name: archive.read(name) for name in archive.namelist() if name != backups.DATABASE}
    database = work / backups.DATABASE
    with contextlib.closing(sqlite3.connect(database)) as conn, conn:
        conn.execute(sql, params)
    manifest = json.loads(members.pop(backups.MANIFEST))
    manifest["files"][backups.DATABASE] = hashlib.sha256(database.read_bytes()).hexdigest()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(database, backups.DATABASE)
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr(backups.MANIFEST, json.dumps(manifest))
    shutil.rmtree(work)


def _set_revision(path: Path, revision: str) -> None:
    edit_backup_database(path, "UPDATE alembic_version SET version_num = ?", revision)


def test_take_rotates_per_reason(sqlite_app, ctx, tmp_path):
    folder = tmp_path / "b"
    for _ in range(4):
        backups.take(db.engine, folder, reason=backups.DAILY, keep=2)
    manual = backups.take_manual(db.engine, folder)
    kept = backups.list_backups(folder)
    assert [b.reason for b in kept] == ["manual", "daily", "daily"]  # newest first
    assert kept[0].path == manual and kept[0].revision == backups._revisions()[1] and kept[0].size > 0
    assert kept[1].taken_at > kept[2].taken_at
    for _ in range(3):
        backups.take_manual(db.engine, folder)
    assert len(backups.list_backups(folder)) == 6  # manual backups are never rotated


def test_list_ignores_foreign_files_and_find_refuses_paths(sqlite_app, ctx, tmp_path):
    folder = tmp_path / "b"
    taken = backups.take(db.engine, folder, reason=backups.MIGRATION)
    (folder / "notes.txt").write_text("x")
    (folder / "piu-daily-20240101-000000-000000.sqlite3").write_text("not a database")
    listed = backups.list_backups(folder)
    assert [b.name for b in listed] == [taken.name, "piu-daily-20240101-000000-000000.sqlite3"]
    assert listed[1].revision is None
    assert backups.find(folder, taken.name).path == taken
    for name in ("notes.txt", f"../b/{taken.name}", str(taken)):
        with pytest.raises(NotFoundError):
            backups.find(folder, name)


def test_take_manual_to_a_file_refuses_to_overwrite(sqlite_app, ctx, tmp_path):
    out = backups.take_manual(db.engine, tmp_path / "b", out=tmp_path / "copy.sqlite3")
    assert backups.check_file(out) == backups._revisions()[1]
    with pytest.raises(ConflictError, match="existe déjà"):
        backups.take_manual(db.engine, tmp_path / "b", out=out)


def test_restore_brings_the_content_back(sqlite_app, ctx):
    folder = sqlite_app.config["PIU_BACKUPS_DIR"]
    taken = backups.take_manual(db.engine, folder)
    expected = _dump(taken)
    user_service.create(username="late", password="correct-horse-battery", role="editor")
    instance_service.configure(city_name="Autre nom", country_code="FR", instance_code="test-city")
    db.session.commit()

    result = backups.restore(db.engine, taken, folder, keep=3)
    assert result.revision == backups._revisions()[1] and not result.upgraded
    assert result.safety is not None and result.safety.name.startswith("piu-before-restore-")
    assert _dump(sqlite_app.config["PIU_DATA_DIR"] / "piu.sqlite3") == expected
    assert instance_service.current().city_name == "Ville de Test"
    with pytest.raises(NotFoundError):
        user_service.by_username("late")
    # the safety copy holds what was replaced, so the restore can be undone
    backups.restore(db.engine, result.safety, folder)
    assert user_service.by_username("late").role == "editor"
    with sqlite3.connect(sqlite_app.config["PIU_DATA_DIR"] / "piu.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_restore_rotates_safety_copies_but_spares_its_source(sqlite_app, ctx):
    folder = sqlite_app.config["PIU_BACKUPS_DIR"]
    source = backups.take(db.engine, folder, reason=backups.BEFORE_RESTORE)
    for _ in range(3):
        backups.restore(db.engine, source, folder, keep=1)
    names = [b.name for b in backups.list_backups(folder)]
    assert source.name in names and len(names) == 2


def test_restore_refuses_a_backup_of_a_newer_version(sqlite_app, ctx):
    folder = sqlite_app.config["PIU_BACKUPS_DIR"]
    taken = backups.take_manual(db.engine, folder)
    _set_revision(taken, "9999")
    user_service.create(username="kept", password="correct-horse-battery", role="reader")
    db.session.commit()
    with pytest.raises(ConflictError, match="version plus récente"):
        backups.restore(db.engine, taken, folder)
    assert user_service.by_username("kept")
    assert [b.name for b in backups.list_backups(folder)] == [taken.name]  # no safety copy was needed


@pytest.mark.parametrize("content", [b"", b"hello, not a database", b"SQLite format 3\x00" + b"\x01" * 4000])
def test_restore_refuses_files_that_are_not_piu_databases(sqlite_app, ctx, tmp_path, content):
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(content)
    with pytest.raises(InvalidInputError):
        backups.restore(db.engine, bad, sqlite_app.config["PIU_BACKUPS_DIR"])
    with pytest.raises(InvalidInputError, match="n'existe pas"):
        backups.check_file(tmp_path / "missing.sqlite3")
    other = tmp_path / "other.sqlite3"
    with contextlib.closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(InvalidInputError, match="pas une sauvegarde de PIU"):
        backups.check_file(other)
    assert instance_service.current().city_name == "Ville de Test"


def test_restore_upgrades_a_backup_of_an_older_version(sqlite_app, ctx, tmp_path):
    import flask_migrate

    from piu_app import MIGRATIONS_DIR

    folder = sqlite_app.config["PIU_BACKUPS_DIR"]
    taken = backups.take(db.engine, folder, reason=backups.DAILY)
    old_home = tmp_path / "old"
    old_home.mkdir()
    with backups.database_of(taken, tmp_path) as database:
        shutil.copy(database, old_home / "piu.sqlite3")
    old_app = create_app({"TESTING": True}, instance_path=old_home)
    with old_app.app_context():
        flask_migrate.downgrade(directory=MIGRATIONS_DIR, revision="0002")
        older = backups.take(db.engine, folder, reason=backups.MANUAL)
        db.engine.dispose()
    assert backups.check_file(older) == "0002"

    result = backups.restore(db.engine, older, folder)
    assert result.upgraded and result.revision == "0002"
    with sqlite3.connect(sqlite_app.config["PIU_DATA_DIR"] / "piu.sqlite3") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == backups._revisions()[1]
    assert instance_service.current().city_name == "Ville de Test"


def test_postgresql_is_refused(app, ctx, monkeypatch, tmp_path):
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        monkeypatch.setattr(backups, "is_sqlite", lambda _engine: False)  # what a PostgreSQL hub sees
    assert backups.take(db.engine, tmp_path, reason=backups.DAILY) is None
    with pytest.raises(ConflictError, match="pg_dump"):
        backups.take_manual(db.engine, tmp_path)
    with pytest.raises(ConflictError, match="pg_restore"):
        backups.restore(db.engine, tmp_path / "any.sqlite3", tmp_path)


# --------------------------------------------------------------------------- the `piu` commands

# `home`: a configured data directory named by PIU_HOME (tests/conftest.py)


def _city(home: Path) -> str:
    with contextlib.closing(sqlite3.connect(home / "piu.sqlite3")) as conn:
        return conn.execute("SELECT city_name FROM instance_settings").fetchone()[0]


def _rename_city(home: Path, name: str) -> None:
    with contextlib.closing(sqlite3.connect(home / "piu.sqlite3")) as conn, conn:
        conn.execute("UPDATE instance_settings SET city_name = ?", (name,))


def test_cli_backup_then_restore(home, tmp_path):
    runner = CliRunner()
    made = runner.invoke(main, ["backup"])
    assert made.exit_code == 0, made.output
    path = Path(made.output.strip())
    assert path.parent == home / "backups" and path.name.startswith("piu-manual-")
    out = runner.invoke(main, ["backup", "--out", str(tmp_path / "copy.sqlite3")])
    assert out.exit_code == 0 and (tmp_path / "copy.sqlite3").is_file()
    again = runner.invoke(main, ["backup", "--out", str(tmp_path / "copy.sqlite3")])
    assert again.exit_code != 0 and "existe déjà" in again.output

    _rename_city(home, "Changée")
    declined = runner.invoke(main, ["restore", str(path)], input="n\n")
    assert declined.exit_code != 0 and _city(home) == "Changée"
    done = runner.invoke(main, ["restore", path.name], input="o\n")  # a name in the backups folder is enough
    assert done.exit_code == 0, done.output
    assert "restaurée" in done.output and _city(home) == "Ville CLI"
    assert list((home / "backups").glob("piu-before-restore-*.zip"))


def test_cli_restore_refusals(home, tmp_path):
    runner = CliRunner()
    junk = tmp_path / "junk.sqlite3"
    junk.write_text("not a database")
    refused = runner.invoke(main, ["restore", "--yes", str(junk)])
    assert refused.exit_code == 1 and "pas une base de données" in refused.output

    newer = tmp_path / "newer.sqlite3"
    assert runner.invoke(main, ["backup", "--out", str(newer)]).exit_code == 0
    _set_revision(newer, "9999")
    refused = runner.invoke(main, ["restore", "--yes", str(newer)])
    assert refused.exit_code == 1 and "version plus récente" in refused.output

    good = tmp_path / "good.sqlite3"
    assert runner.invoke(main, ["backup", "--out", str(good)]).exit_code == 0
    lock = InstanceLock(home)
    assert lock.acquire()  # PIU is running on this data directory
    try:
        refused = runner.invoke(main, ["restore", "--yes", str(good)])
    finally:
        lock.release()
    assert refused.exit_code == 1 and "fermez-le" in refused.output
    assert runner.invoke(main, ["restore", "--yes", str(good)]).exit_code == 0


def test_start_takes_one_daily_backup_a_day_with_rotation(home, monkeypatch):
    from piu_app import launcher

    monkeypatch.setattr(launcher, "setup_logging", lambda _dir: None)  # keep the test's root logger clean
    monkeypatch.setenv("PIU_BACKUP_KEEP", "2")
    folder = home / "backups"
    folder.mkdir(exist_ok=True)
    for day in ("20200101", "20200102"):
        (folder / f"piu-daily-{day}-080000-000000.sqlite3").write_bytes(b"")
    for _ in range(2):
        app = launcher.prepare(home)
        launcher.daily_backup(app)  # what serve() starts in the background once it listens
        with app.app_context():
            db.engine.dispose()
    daily = sorted(p.name for p in folder.glob("piu-daily-*"))
    assert len(daily) == 2 and daily[0] == "piu-daily-20200102-080000-000000.sqlite3"
    assert daily[1].endswith(".zip")


# --------------------------------------------------------------------------- one file: database and files

def _upload(data_dir: Path, data: bytes) -> Path:
    digest = hashlib.sha256(data).hexdigest()
    path = data_dir / "uploads" / digest[:2] / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_restore_brings_the_attachments_back_and_removes_the_newer_ones(sqlite_app, ctx):
    data_dir, folder = sqlite_app.config["PIU_DATA_DIR"], sqlite_app.config["PIU_BACKUPS_DIR"]
    kept = _upload(data_dir, b"%PDF-1.4 kept")
    lost = _upload(data_dir, b"%PDF-1.4 lost after the backup")
    taken = backups.take_manual(db.engine, folder)
    with zipfile.ZipFile(taken) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read(backups.MANIFEST))
    assert {backups.DATABASE, backups.MANIFEST} <= names
    assert "signing_key.pem" not in names  # the private key never travels in a backup
    assert manifest["files"][f"uploads/{kept.parent.name}/{kept.name}"] == kept.name
    lost.unlink()
    newer = _upload(data_dir, b"%PDF-1.4 added after the backup")

    result = backups.restore(db.engine, taken, folder)
    assert kept.read_bytes() == b"%PDF-1.4 kept" and lost.read_bytes() == b"%PDF-1.4 lost after the backup"
    assert not newer.exists()  # no record of the restored register names it; the safety copy keeps it
    with zipfile.ZipFile(result.safety) as archive:
        assert f"uploads/{newer.parent.name}/{newer.name}" in archive.namelist()


def test_a_damaged_archive_changes_nothing(sqlite_app, ctx):
    """All or nothing: an attachment whose bytes are not its digest stops the restore before anything moves."""
    data_dir, folder = sqlite_app.config["PIU_DATA_DIR"], sqlite_app.config["PIU_BACKUPS_DIR"]
    gone = _upload(data_dir, b"%PDF-1.4 one")
    taken = backups.take_manual(db.engine, folder)
    gone.unlink()  # so that the restore needs the archive's copy
    with zipfile.ZipFile(taken) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    bad = next(n for n in members if n.startswith("uploads/"))
    members[bad] = b"%PDF-1.4 something else"
    with zipfile.ZipFile(taken, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    extra = _upload(data_dir, b"%PDF-1.4 made after the backup")
    user_service.create(username="late", password="correct-horse-battery", role="editor")
    db.session.commit()
    before = {p: p.read_bytes() for p in (data_dir / "uploads").rglob("*") if p.is_file()}

    with pytest.raises(InvalidInputError, match="endommagée"):
        backups.restore(db.engine, taken, folder)
    assert {p: p.read_bytes() for p in (data_dir / "uploads").rglob("*") if p.is_file()} == before
    assert extra.exists() and user_service.by_username("late")
    assert not list(folder.glob(".piu-partial-*")) and not list((data_dir / "uploads").rglob(".piu-partial-*"))


def test_a_backup_of_the_former_kind_still_restores(sqlite_app, ctx):
    """Earlier versions wrote the database alone (`….sqlite3`): listed, marked, restored; files left alone."""
    from piu_app.database import backup_sqlite

    data_dir, folder = sqlite_app.config["PIU_DATA_DIR"], sqlite_app.config["PIU_BACKUPS_DIR"]
    old = backup_sqlite(db.engine, folder / "piu-daily-20240101-080000-000000.sqlite3")
    attachment = _upload(data_dir, b"%PDF-1.4 kept as it is")
    user_service.create(username="late", password="correct-horse-battery", role="editor")
    db.session.commit()
    listed = backups.find(folder, old.name)
    assert not listed.with_files and listed.revision == backups._revisions()[1]

    backups.restore(db.engine, old, folder)
    with pytest.raises(NotFoundError):
        user_service.by_username("late")
    assert attachment.read_bytes() == b"%PDF-1.4 kept as it is"


def test_rotation_by_total_size_keeps_the_newest_and_the_manual_ones(sqlite_app, ctx, tmp_path):
    folder = tmp_path / "b"
    manual = backups.take_manual(db.engine, folder)
    first = backups.take(db.engine, folder, reason=backups.DAILY, keep=None, max_bytes=None)
    size = first.stat().st_size
    for reason in (backups.IMPORT, backups.DAILY, backups.MIGRATION):
        backups.take(db.engine, folder, reason=reason, keep=None, max_bytes=None)
    assert len(backups.list_backups(folder)) == 5
    last = backups.take(db.engine, folder, reason=backups.IMPORT, keep=None, max_bytes=int(2.5 * size))
    listed = backups.list_backups(folder)
    automatic = [b for b in listed if b.reason != backups.MANUAL]
    assert len(automatic) == 2 and automatic[0].path == last  # the two newest fit under the limit
    assert manual in [b.path for b in listed]  # never removed by rotation
    backups.take(db.engine, folder, reason=backups.DAILY, keep=None, max_bytes=1)  # smaller than any backup
    assert [b.reason for b in backups.list_backups(folder)] == ["daily", "manual"]  # the newest always stays


def test_the_size_limit_is_a_setting(sqlite_app, ctx, tmp_path):
    sqlite_app.config["BACKUP_MAX_MB"] = 1
    assert backups.configured_max_bytes() == 1024 * 1024
    sqlite_app.config["BACKUP_MAX_MB"] = 0
    assert backups.configured_max_bytes() is None


def test_the_daily_backup_waits_for_the_server(home, monkeypatch):
    """Start-up does not copy the register (6.5 s at 100 000 innovations): serve() starts it once listening."""
    from piu_app import launcher

    monkeypatch.setattr(launcher, "setup_logging", lambda _dir: None)
    app = launcher.prepare(home)
    assert not list((home / "backups").glob("piu-daily-*")), "prepare() took no copy"
    launcher.start_daily_backup(app).join(timeout=120)
    assert [b.reason for b in backups.list_backups(home / "backups")] == ["daily"]
    with app.app_context():
        db.engine.dispose()
