"""The backups page: administrators list, take, download and restore backups; nobody else gets in."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from piu_app.database import writing
from piu_app.extensions import db
from piu_app.services import backups
from piu_app.services import instance as instance_service
from piu_app.services import users as user_service
from tests.conftest import csrf_token
from tests.services.test_backups import edit_backup_database


@pytest.fixture
def sqlite_app(app: Flask) -> Flask:
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("SQLite backups; PostgreSQL is covered by test_postgresql_page_says_the_server_backs_up")
    return app


def _take(app: Flask, reason: str = backups.DAILY) -> str:
    with app.app_context():
        return backups.take(db.engine, app.config["PIU_BACKUPS_DIR"], reason=reason).name


def test_only_administrators_get_in(sqlite_app, editor, reader):
    name = _take(sqlite_app)
    for client in (editor, reader):
        assert client.get("/backups").status_code == 403
        assert client.get(f"/backups/{name}/download").status_code == 403
        token = csrf_token(client, "/")
        assert client.post("/backups/now", data={"csrf_token": token}).status_code == 403
        assert client.post(f"/backups/{name}/restore", data={"csrf_token": token}).status_code == 403
    assert "/backups" not in editor.get("/").get_data(as_text=True)


def test_admin_lists_and_backs_up_now(sqlite_app, admin):
    _take(sqlite_app, backups.MIGRATION)
    page = admin.get("/backups").get_data(as_text=True)
    assert "avant migration" in page and "Sauvegarder maintenant" in page
    assert re.search(r"<td>\d+(,\d)? [KM]o</td>", page)  # compressed: a small register's backup is in Ko
    assert "pièces jointes" in page and re.search(r"dépassent ensemble 2\s?000 Mo", page)  # BACKUP_MAX_MB
    assert 'href="/backups"' in admin.get("/").get_data(as_text=True)  # the admin menu links to it
    response = admin.post("/backups/now", data={"csrf_token": csrf_token(admin, "/backups")})
    assert response.status_code == 302
    page = admin.get("/backups").get_data(as_text=True)
    assert "Sauvegarde enregistrée" in page and "manuelle" in page
    assert page.index("manuelle") < page.index("avant migration")  # newest first
    assert admin.post("/backups/now").status_code == 400  # no CSRF token


def test_download_serves_listed_backups_only(sqlite_app, admin):
    name = _take(sqlite_app)
    response = admin.get(f"/backups/{name}/download")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:  # one file: the database and the attachments
        assert archive.read("piu.sqlite3").startswith(b"SQLite format 3\x00")
    assert name in response.headers["Content-Disposition"]
    (sqlite_app.config["PIU_DATA_DIR"] / "secret.sqlite3").write_text("x")
    for bad in ("..%2Fsecret.sqlite3", "..%2F..%2Fpiu.sqlite3", "%2E%2E", "piu-daily-nope.sqlite3"):
        assert admin.get(f"/backups/{bad}/download").status_code == 404, bad


def test_restore_through_the_page(sqlite_app, admin):
    name = _take(sqlite_app)
    with sqlite_app.app_context(), writing():
        user_service.create(username="late", password="correct-horse-battery", role="editor")
        db.session.commit()
    confirm = admin.get(f"/backups/{name}/restore")
    assert confirm.status_code == 200 and "Restaurer cette sauvegarde" in confirm.get_data(as_text=True)
    response = admin.post(f"/backups/{name}/restore",
                          data={"csrf_token": csrf_token(admin, f"/backups/{name}/restore")})
    assert response.status_code == 302
    page = admin.get("/backups").get_data(as_text=True)
    assert "restaurée" in page and "avant restauration" in page  # still logged in: same administrator
    with sqlite_app.app_context():
        assert "late" not in [u.username for u in user_service.all_users()]
        assert instance_service.current().city_name == "Ville de Test"


def test_restore_refusal_is_flashed(sqlite_app, admin):
    name = _take(sqlite_app)
    edit_backup_database(sqlite_app.config["PIU_BACKUPS_DIR"] / name, "UPDATE alembic_version SET version_num = '9999'")
    response = admin.post(f"/backups/{name}/restore", data={"csrf_token": csrf_token(admin, "/backups")},
                          follow_redirects=True)
    assert "version plus récente" in response.get_data(as_text=True)


def test_postgresql_page_says_the_server_backs_up(app, admin, monkeypatch):
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        from piu_app.views import backups as view

        monkeypatch.setattr(view, "is_sqlite", lambda _engine: False)
        monkeypatch.setattr(backups, "is_sqlite", lambda _engine: False)
    page = admin.get("/backups").get_data(as_text=True)
    assert "serveur de base de données" in page and "Sauvegarder maintenant" not in page
    response = admin.post("/backups/now", data={"csrf_token": csrf_token(admin, "/")}, follow_redirects=True)
    assert "pg_dump" in response.get_data(as_text=True)


def test_dates_follow_the_reader_language(sqlite_app, admin: FlaskClient):
    name = _take(sqlite_app, backups.BEFORE_RESTORE)
    year = name.split("-")[3][:4]
    assert f" {year} à " in admin.get("/backups").get_data(as_text=True)
    admin.post("/lang/en", data={"csrf_token": csrf_token(admin, "/"), "next": "/backups"})
    page = admin.get("/backups").get_data(as_text=True)
    assert 'lang="en"' in page and f", {year}" in page  # e.g. "March 12, 2025"


# --------------------------------------------------------------------------- attachments travel with the backup

PDF = b"%PDF-1.4\n% rapport d'experimentation\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(40))


def _hashes(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file below `folder`."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _attach(client: FlaskClient, uid: str, data: bytes, filename: str) -> None:
    response = client.post(f"/innovations/{uid}/documents", data={
        "csrf_token": csrf_token(client, f"/innovations/{uid}"), "title": "", "doc_type": "other",
        "file": (io.BytesIO(data), filename)}, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)


def test_a_backup_taken_in_the_interface_restores_records_and_attachments_into_a_fresh_data_directory(
        sqlite_app, admin, tmp_path, monkeypatch):
    """The acceptance test of issue 11: records and attachments back, files compared by hash."""
    from click.testing import CliRunner

    from piu_app import create_app
    from piu_app.cli import main
    from piu_app.models import Document, Innovation
    from tests import factories

    with sqlite_app.test_request_context(), writing():
        uid = factories.make_innovation(name="Compostage de quartier", visibility="network").uid
        db.session.commit()
    _attach(admin, uid, PDF, "rapport.pdf")
    _attach(admin, uid, PNG, "photo.png")
    data_dir = Path(sqlite_app.config["PIU_DATA_DIR"])
    (data_dir / "manifests").mkdir(exist_ok=True)
    (data_dir / "manifests" / "peer-city.json").write_text('{"peer": "signed"}')
    uploads_before = _hashes(data_dir / "uploads")
    assert len(uploads_before) == 2

    assert admin.post("/backups/now", data={"csrf_token": csrf_token(admin, "/backups")}).status_code == 302
    name = re.search(r'href="/backups/([^"/]+)/download"', admin.get("/backups").get_data(as_text=True))[1]
    assert name.startswith("piu-manual-") and name.endswith(".zip")
    assert (Path(sqlite_app.config["PIU_BACKUPS_DIR"]) / name).stat().st_mode & 0o077 == 0  # private
    downloaded = tmp_path / name
    downloaded.write_bytes(admin.get(f"/backups/{name}/download").data)

    fresh = tmp_path / "fresh"  # another computer: nothing but a new, empty data directory
    monkeypatch.setenv("PIU_HOME", str(fresh))
    monkeypatch.delenv("PIU_DATABASE_URL", raising=False)
    result = CliRunner().invoke(main, ["restore", "--yes", str(downloaded)])
    assert result.exit_code == 0, result.output

    assert _hashes(fresh / "uploads") == uploads_before
    with zipfile.ZipFile(downloaded) as archive:
        assert "signing_key.pem" not in archive.namelist()  # kept apart by hand (docs/guide.md)
    assert (fresh / "manifests" / "peer-city.json").read_text() == '{"peer": "signed"}'
    restored = create_app({"TESTING": True}, instance_path=fresh)
    with restored.app_context():
        assert db.session.scalar(db.select(Innovation.name).filter_by(uid=uid)) == "Compostage de quartier"
        digests = set(db.session.scalars(db.select(Document.sha256).filter_by(linked_uid=uid)))
        assert digests == {hashlib.sha256(PDF).hexdigest(), hashlib.sha256(PNG).hexdigest()}
        db.engine.dispose()
