"""The Imports page through HTTP: a bundle's preview lists its records, every import is listed with
what it brought and its backup, undone from the page, or shows what blocks its undo."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

from piu_app.database import is_sqlite
from piu_app.extensions import db
from piu_app.models import ImportBatch, Innovation, Organisation
from piu_app.registry import RECORD_TYPES
from piu_app.services import records

from ..conftest import csrf_token
from ..exchange.cities import export, inside, make_city
from ..factories import make_experiment, make_innovation, make_territory


def _bundle(register_template, tmp_path, *, extra: int = 0) -> bytes:
    peer = make_city(register_template, tmp_path / "peer", "ville-pair", name="Ville Pair")
    with inside(peer):
        territory = make_territory(name="Ville Pair", visibility="network")
        innovation = make_innovation(name="Compostage de quartier", visibility="network")
        make_experiment(innovation, title="Essai à Ville Pair", territory=territory.uid, visibility="network")
        for i in range(extra):
            make_innovation(name=f"Innovation {i:03d}", visibility="network")
    return export(peer, tmp_path / "pair.zip").read_bytes()


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _upload(editor, bundle: bytes) -> str:
    response = editor.post("/exchange/import", data={"bundle": (io.BytesIO(bundle), "pair.zip"),
                                                     "csrf_token": csrf_token(editor, "/exchange/")},
                           content_type="multipart/form-data")
    assert response.status_code == 302
    return response.headers["Location"]


def test_a_bundle_is_previewed_record_by_record_imported_listed_and_undone(app, editor, register_template, tmp_path):
    with app.app_context():
        before = sorted(db.session.scalars(db.select(Innovation.name)))
    bundle = _bundle(register_template, tmp_path)
    preview_url = _upload(editor, bundle)
    preview = _text(editor.get(preview_url))
    assert "nouvelles (3)" in preview  # the territory, the innovation, the experiment
    assert "Compostage de quartier" in preview and "Essai à Ville Pair" in preview

    response = editor.post(preview_url, data={"csrf_token": csrf_token(editor, "/exchange/")})
    report_url = response.headers["Location"]
    with app.app_context():
        innovation = db.session.scalars(db.select(Innovation).filter_by(name="Compostage de quartier")).one()
        batch = db.session.scalars(db.select(ImportBatch)).one()
        if is_sqlite(db.engine):  # a PostgreSQL hub is backed up by its own pg_dump, not by PIU
            assert batch.backup_name.startswith("piu-import-")
            assert (Path(app.config["PIU_BACKUPS_DIR"]) / batch.backup_name).is_file()
        else:
            assert batch.backup_name == ""
    report = _text(editor.get(report_url))
    assert f'href="/innovations/{innovation.uid}"' in report  # the report links what arrived

    listing = _text(editor.get("/imports/"))
    assert "pair.zip" in listing and "Ville Pair" in listing and f"/imports/{batch.uid}" in listing
    detail = _text(editor.get(f"/imports/{batch.uid}"))
    assert f'href="/innovations/{innovation.uid}">Compostage de quartier</a>' in detail
    assert batch.backup_name in detail and "Annuler cet import" in detail

    # a re-import preview shows the records already here, linked
    again = _text(editor.get(_upload(editor, bundle)))
    assert "inchangées (3)" in again and f'href="/innovations/{innovation.uid}"' in again

    token = csrf_token(editor, f"/imports/{batch.uid}")
    response = editor.post(f"/imports/{batch.uid}/undo", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/imports/{batch.uid}")
    with app.app_context():
        assert sorted(db.session.scalars(db.select(Innovation.name))) == before
    detail = _text(editor.get(f"/imports/{batch.uid}"))
    assert "annulé le" in detail and "Annuler cet import" not in detail and "retirée" in detail


def test_a_long_preview_is_paginated_with_counts(app, editor, register_template, tmp_path):
    preview_url = _upload(editor, _bundle(register_template, tmp_path, extra=60))
    first = _text(editor.get(preview_url))
    assert "nouvelles (63)" in first and "Page 1 sur 2" in first
    second = _text(editor.get(preview_url + "?show=created&page=2"))
    assert "Page 2 sur 2" in second
    shown = set(re.findall(r"Innovation \d{3}", first)) | set(re.findall(r"Innovation \d{3}", second))
    assert len(shown) == 60


def test_a_spreadsheet_import_takes_a_backup_and_an_edit_since_blocks_its_undo(app, editor, admin):
    data = b"Nom;Type\r\nLumisol;association\r\nAutre;association\r\n"
    response = editor.post("/spreadsheets/", data={"csrf_token": csrf_token(editor, "/spreadsheets/"),
                                                   "record_type": "organisations",
                                                   "file": (io.BytesIO(data), "porteurs.csv")},
                           content_type="multipart/form-data")
    token = response.headers["Location"].split("/")[-2]
    response = editor.post(f"/spreadsheets/{token}/mapping", data={
        "csrf_token": csrf_token(editor, f"/spreadsheets/{token}/mapping"), "col-0": "name", "col-1": "org_type"})
    response = editor.post(f"/spreadsheets/{token}/import",
                           data={"csrf_token": csrf_token(editor, f"/spreadsheets/{token}/preview")})
    assert response.status_code == 302
    report = _text(editor.get(response.headers["Location"]))
    with app.test_request_context():
        batch = db.session.scalars(db.select(ImportBatch)).one()
        assert batch.kind == "spreadsheet"
        assert batch.backup_name.startswith("piu-import-") if is_sqlite(db.engine) else batch.backup_name == ""
        uid = batch.uid
        lumisol = db.session.scalars(db.select(Organisation).filter_by(name="Lumisol")).one()
        lumisol_uid = lumisol.uid
    assert f"/imports/{uid}" in report  # the spreadsheet's report leads to the Imports page
    detail = _text(admin.get(f"/imports/{uid}"))
    assert "Annuler cet import" in detail
    if batch.backup_name:  # administrators reach the backup (SQLite: a hub's are pg_dump's)
        assert f'href="/backups">{batch.backup_name}</a>' in detail

    with app.test_request_context():
        org = db.session.scalars(db.select(Organisation).filter_by(uid=lumisol_uid)).one()
        records.update(RECORD_TYPES["organisations"], org, {"name": "Lumisol SA"}, username="moussa")
        db.session.commit()
    detail = _text(editor.get(f"/imports/{uid}"))
    assert "Annuler cet import" not in detail and "ne peut pas être annulé" in detail
    assert f'href="/organisations/{lumisol_uid}">Lumisol SA</a>' in detail and "moussa" in detail
    response = editor.post(f"/imports/{uid}/undo", data={"csrf_token": csrf_token(editor, f"/imports/{uid}")})
    assert response.status_code == 302
    assert "Lumisol SA" in _text(editor.get(f"/imports/{uid}"))  # the refusal says why
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Organisation)) == 2


def test_readers_do_not_see_imports(app, reader, editor):
    assert reader.get("/imports/").status_code == 403
    assert 'href="/imports/"' not in reader.get("/").get_data(as_text=True)
    assert 'href="/imports/"' in editor.get("/").get_data(as_text=True)
    assert editor.get("/imports/?page=abc").status_code == 200
    assert editor.get("/imports/00000000-0000-4000-8000-000000000000").status_code == 404


def test_a_refused_spreadsheet_import_leaves_no_backup_behind(app, editor):
    data = b"Nom;Type\r\nLumisol;association\r\n;association\r\n"  # a row without its required name
    response = editor.post("/spreadsheets/", data={"csrf_token": csrf_token(editor, "/spreadsheets/"),
                                                   "record_type": "organisations",
                                                   "file": (io.BytesIO(data), "porteurs.csv")},
                           content_type="multipart/form-data")
    token = response.headers["Location"].split("/")[-2]
    editor.post(f"/spreadsheets/{token}/mapping", data={
        "csrf_token": csrf_token(editor, f"/spreadsheets/{token}/mapping"), "col-0": "name", "col-1": "org_type"})
    response = editor.post(f"/spreadsheets/{token}/import",
                           data={"csrf_token": csrf_token(editor, f"/spreadsheets/{token}/preview")})
    assert response.headers["Location"].endswith(f"/spreadsheets/{token}/preview")  # refused, back to the preview
    assert not list(Path(app.config["PIU_BACKUPS_DIR"]).glob("piu-import-*"))
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ImportBatch)) == 0
