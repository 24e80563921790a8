"""`piu export` and `piu import` when things go wrong: one clear sentence, a non-zero exit, no traceback.

From issue 10: "`piu export --out <missing folder>/x.zip` ends in a traceback", "`piu export` on a
data directory never set up silently writes an empty bundle", and item 10 ("a full disk: `piu
import` prints a 59-line traceback").
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.exc import OperationalError

from piu_app import database
from piu_app.cli import main
from piu_app.extensions import db
from piu_app.services import exchange as exchange_service

from .cities import export, inside, make_city


@pytest.fixture(autouse=True)
def quiet_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from piu_app import launcher

    monkeypatch.setattr(launcher, "setup_logging", lambda _dir: None)  # keep the test's root logger clean
    for name in ("PIU_DATABASE_URL", "PIU_TEST_DATABASE_URL", "PIU_DEFAULT_LOCALE"):
        monkeypatch.delenv(name, raising=False)


# `home`: a configured data directory named by PIU_HOME (tests/conftest.py)


@pytest.fixture
def bundle(register_template, tmp_path) -> Path:
    from ..factories import make_innovation

    peer = make_city(register_template, tmp_path / "peer", "ville-pair", name="Ville Pair")
    with inside(peer):
        make_innovation(name="Compostage de quartier", visibility="network")
    return export(peer, tmp_path / "pair.zip")


def _innovations(home: Path) -> int:
    with contextlib.closing(sqlite3.connect(home / "piu.sqlite3")) as conn:
        return conn.execute("SELECT count(*) FROM innovations").fetchone()[0]


def _one_clear_sentence(result, *words: str) -> None:
    assert result.exit_code not in (0, None), result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (OSError, OperationalError))
    for word in words:
        assert word in result.output, result.output


def test_export_into_a_missing_folder_says_so(home, tmp_path):
    result = CliRunner().invoke(main, ["export", "--out", str(tmp_path / "missing" / "x.zip")])
    _one_clear_sentence(result, "n'existe pas", str(tmp_path / "missing"))
    assert not (tmp_path / "missing").exists()


def test_export_of_a_register_never_set_up_is_refused(tmp_path, monkeypatch, quiet_start):
    monkeypatch.setenv("PIU_HOME", str(tmp_path / "fresh"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["export", "--out", str(tmp_path / "x.zip")])
    _one_clear_sentence(result, "pas encore installé", "mise en route")
    assert not (tmp_path / "x.zip").exists() and not list(tmp_path.glob("*.zip"))
    monkeypatch.setenv("PIU_DEFAULT_LOCALE", "en")
    result = CliRunner().invoke(main, ["export"])
    _one_clear_sentence(result, "has not been set up yet")
    assert not list(tmp_path.glob("*.zip"))


def test_export_on_a_full_disk_says_so(home, tmp_path, monkeypatch):
    import zipfile

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(zipfile.ZipFile, "writestr", full)
    result = CliRunner().invoke(main, ["export", "--out", str(tmp_path / "x.zip")])
    _one_clear_sentence(result, "Le disque est plein")
    assert not list(tmp_path.glob("*x.zip*"))


def test_import_on_a_full_disk_at_the_backup_says_so(home, bundle, monkeypatch):
    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(database, "_fsync_file", full)
    result = CliRunner().invoke(main, ["import", str(bundle)])
    _one_clear_sentence(result, "Le disque est plein")
    assert _innovations(home) == 0


@pytest.mark.parametrize("lang, words", [("fr", "Le disque est plein : l'import n'a rien écrit"),
                                         ("en", "The disk is full: the import wrote nothing")])
def test_import_on_a_full_disk_while_writing_says_so_in_the_users_language(home, bundle, monkeypatch, lang, words):
    monkeypatch.setenv("PIU_DEFAULT_LOCALE", lang)
    real = exchange_service.import_bundle

    def fill_then_fail(*args, **kwargs):
        real(*args, **kwargs)
        db.session.flush()
        raise OperationalError("COMMIT", {}, sqlite3.OperationalError("database or disk is full"))
    monkeypatch.setattr(exchange_service, "import_bundle", fill_then_fail)
    result = CliRunner().invoke(main, ["import", str(bundle)])
    _one_clear_sentence(result, words)
    assert _innovations(home) == 0
    wal = home / "piu.sqlite3-wal"
    assert not wal.exists() or wal.stat().st_size == 0


def test_other_database_errors_are_not_hidden_as_a_full_disk(home, bundle, monkeypatch):
    def broken(*_a, **_k):
        raise OperationalError("COMMIT", {}, sqlite3.OperationalError("no such table: x"))
    monkeypatch.setattr(exchange_service, "import_bundle", broken)
    result = CliRunner().invoke(main, ["import", str(bundle)])
    assert result.exit_code != 0 and isinstance(result.exception, OperationalError)


@pytest.mark.skipif(os.name == "nt" or not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="mounting a small tmpfs needs root on Linux")
def test_a_really_full_disk_import_and_start(tmp_path, register_template, bundle):
    """The data directory on a 6 MB tmpfs, filled up: `piu import` says so and leaves nothing, PIU still starts."""
    import subprocess
    import sys

    home = tmp_path / "small"
    home.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(home)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIU_")} | {"PIU_HOME": str(home)}

    def piu(*args: str, code: str = "from piu_app.cli import main; main()") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                              timeout=180)
    try:
        setup = ("from piu_app import launcher, paths; from piu_app.database import writing; "
                 "from piu_app.extensions import db; from piu_app.services import instance; "
                 "app = launcher.prepare(paths.data_dir()); ctx = app.app_context(); ctx.push(); "
                 "w = writing(); w.__enter__(); "
                 "instance.configure(city_name='Petite', country_code='SN', instance_code='petite'); "
                 "db.session.commit()")
        assert piu(code=setup).returncode == 0
        for daily in (home / "backups").glob("piu-daily-*"):
            daily.unlink()  # today's backup will be tried again, on a full disk
        free = os.statvfs(home).f_bavail * os.statvfs(home).f_frsize
        (home / "filler").write_bytes(b"\0" * max(0, free - 200_000))  # 200 KB left: less than one backup
        before = sorted(p.name for p in home.rglob("*") if p.name != "piu.log")

        result = piu("import", str(bundle))
        assert result.returncode not in (0, None)
        assert "Le disque est plein" in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert not list((home / "backups").glob("piu-*")) and not list((home / "backups").glob(".piu-partial-*"))
        assert sorted(p.name for p in home.rglob("*") if p.name != "piu.log") == before

        started = piu(code="from piu_app import launcher, paths; launcher.prepare(paths.data_dir()); print('prêt')")
        assert started.returncode == 0 and "prêt" in started.stdout, started.stderr
    finally:
        subprocess.run(["umount", str(home)], check=False)
