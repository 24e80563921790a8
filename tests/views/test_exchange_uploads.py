"""Bundle uploads between upload and confirm: named by the user's file, private to their uploader, and
never left behind by a failed import (issue 10: item 10 and the newcomer's items)."""

from __future__ import annotations

import errno
import html
import io
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from piu_app.database import writing
from piu_app.extensions import db
from piu_app.models import Innovation
from piu_app.services import exchange as exchange_service
from piu_app.services import users as user_service

from ..conftest import PASSWORD, csrf_token, login
from ..exchange.cities import export, inside, make_city
from ..factories import make_innovation


@pytest.fixture
def bundle(register_template, tmp_path) -> bytes:
    peer = make_city(register_template, tmp_path / "peer", "ville-pair", name="Ville Pair")
    with inside(peer):
        make_innovation(name="Compostage de quartier", visibility="network")
    return export(peer, tmp_path / "pair.zip").read_bytes()


def _pending(app) -> list[Path]:
    folder = Path(app.config["PIU_UPLOADS_DIR"]) / "pending-imports"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _upload(client, data: bytes, name: str = "pair.zip") -> str:
    response = client.post("/exchange/import", data={"bundle": (io.BytesIO(data), name),
                                                     "csrf_token": csrf_token(client, "/exchange/")},
                           content_type="multipart/form-data")
    assert response.status_code == 302 and "/exchange/import/" in response.headers["Location"]
    return response.headers["Location"]


def _imported(app) -> bool:
    with app.app_context():
        return db.session.scalars(db.select(Innovation).filter_by(name="Compostage de quartier")).first() is not None


def test_a_refused_upload_names_the_users_file_never_the_temporary_one(app, editor):
    preview_url = _upload(editor, b"not a zip", "Paquet de Dakar.zip")
    token = preview_url.rstrip("/").rsplit("/", 1)[-1]
    page = editor.get(preview_url)
    text = html.unescape(page.get_data(as_text=True))
    assert page.status_code == 400
    assert "« Paquet de Dakar.zip »" in text
    assert f"{token}.zip" not in text and "pending-imports" not in text
    assert _pending(app) == []  # refused: the upload is gone


def test_a_refused_confirm_names_the_users_file(app, editor, bundle, monkeypatch):
    from piu_app.exchange.bundle_import import BundleError

    preview_url = _upload(editor, bundle, "Ville Pair mars.zip")
    token = preview_url.rstrip("/").rsplit("/", 1)[-1]

    def refuse(*_a, **_k):
        raise BundleError("Refusé pour le test.")
    monkeypatch.setattr(exchange_service, "import_bundle", refuse)
    page = editor.post(preview_url, data={"csrf_token": csrf_token(editor, "/exchange/")})
    text = html.unescape(page.get_data(as_text=True))
    assert page.status_code == 400 and "« Ville Pair mars.zip »" in text and f"{token}.zip" not in text


def test_a_pending_upload_belongs_to_the_editor_who_sent_it(app, editor, bundle):
    with app.app_context(), writing():
        user_service.create(username="editor2", password=PASSWORD, role="editor")
        db.session.commit()
    other = login(app.test_client(), "editor2")
    admin = login(app.test_client(), "admin")
    preview_url = _upload(editor, bundle)
    for stranger in (other, admin):
        seen = stranger.get(preview_url)
        assert seen.status_code == 302  # as if it did not exist: no preview, no city name
        assert "n'est plus disponible" in html.unescape(stranger.get("/exchange/").get_data(as_text=True))
        confirmed = stranger.post(preview_url, data={"csrf_token": csrf_token(stranger, "/exchange/")})
        assert confirmed.status_code == 302 and "/exchange/imports/" not in confirmed.headers["Location"]
    assert not _imported(app)
    assert len(_pending(app)) == 2, "a stranger's attempt does not delete the uploader's file"
    assert "Ville Pair" in html.unescape(editor.get(preview_url).get_data(as_text=True))
    done = editor.post(preview_url, data={"csrf_token": csrf_token(editor, "/exchange/")})
    assert "/exchange/imports/" in done.headers["Location"] and _imported(app)
    assert _pending(app) == []


def _full(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_at_the_backup_before_import_shows_a_clear_message(app, editor, bundle, monkeypatch):
    from piu_app import database

    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("PIU's backups are SQLite's (a PostgreSQL hub is backed up by its server)")
    preview_url = _upload(editor, bundle)
    monkeypatch.setattr(database, "_fsync_file", _full)
    response = editor.post(preview_url, data={"csrf_token": csrf_token(editor, "/exchange/")})
    assert response.status_code == 302
    page = html.unescape(editor.get(response.headers["Location"]).get_data(as_text=True))
    assert "Le disque est plein" in page
    assert not _imported(app) and _pending(app) == []
    assert not list(Path(app.config["PIU_BACKUPS_DIR"]).iterdir())


def test_a_full_disk_while_writing_the_import_leaves_neither_upload_nor_journal(app, editor, bundle, monkeypatch):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("the SQLite write-ahead log")
    preview_url = _upload(editor, bundle)
    real = exchange_service.import_bundle

    def fill_then_fail(*args, **kwargs):
        real(*args, **kwargs)  # the rows are written into the transaction (and the WAL) ...
        db.session.flush()
        raise OperationalError("COMMIT", {}, sqlite3.OperationalError("database or disk is full"))
    monkeypatch.setattr(exchange_service, "import_bundle", fill_then_fail)
    response = editor.post(preview_url, data={"csrf_token": csrf_token(editor, "/exchange/")})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    page = html.unescape(editor.get(response.headers["Location"]).get_data(as_text=True))
    assert "Le disque est plein : l'import n'a rien écrit" in page
    assert not _imported(app) and _pending(app) == []
    wal = Path(app.config["PIU_DATA_DIR"]) / "piu.sqlite3-wal"
    assert not wal.exists() or wal.stat().st_size == 0, "the failed transaction's log is given back"


def test_an_upload_on_a_full_disk_leaves_nothing(app, editor, monkeypatch):
    real_open = Path.open

    class FullFile:
        def __init__(self, handle):
            self._handle = handle

        def write(self, _data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            self._handle.close()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._handle.close()

    def open_full(self, mode="r", *args, **kwargs):
        handle = real_open(self, mode, *args, **kwargs)
        return FullFile(handle) if "pending-imports" in str(self) and "w" in mode else handle

    token = csrf_token(editor, "/exchange/")
    monkeypatch.setattr(Path, "open", open_full)
    response = editor.post("/exchange/import", data={"bundle": (io.BytesIO(b"PK\x03\x04" + b"x" * 100), "a.zip"),
                                                     "csrf_token": token}, content_type="multipart/form-data")
    monkeypatch.undo()
    assert response.status_code == 302 and response.headers["Location"].endswith("/exchange/")
    assert "Le disque est plein" in html.unescape(editor.get("/exchange/").get_data(as_text=True))
    assert _pending(app) == []
