"""The exchange pages: export a bundle, import a peer's (upload → preview → confirm), undo it."""

from __future__ import annotations

import html
import io
import re
import zipfile

from piu_app.extensions import db
from piu_app.models import Innovation

from ..conftest import csrf_token
from ..exchange.cities import export, inside, make_city
from ..factories import make_innovation, make_territory


def _peer_bundle(register_template, tmp_path) -> bytes:
    peer = make_city(register_template, tmp_path / "peer", "ville-pair", name="Ville Pair")
    with inside(peer):
        territory = make_territory(name="Ville Pair", visibility="network")
        innovation = make_innovation(name="Compostage de quartier", visibility="network")
        from ..factories import make_experiment
        make_experiment(innovation, title="Essai à Ville Pair", territory=territory.uid, visibility="network")
    return export(peer, tmp_path / "pair.zip").read_bytes()


def test_export_downloads_a_bundle_of_the_chosen_level(app, editor):
    with app.test_request_context():
        make_innovation(name="Partagée", visibility="network")
        make_innovation(name="Secrète", visibility="private")
        db.session.commit()
    response = editor.post("/exchange/export", data={"level": "network", "csrf_token": csrf_token(editor, "/exchange/")})
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert re.search(r"test-city-\d{8}\.registre\.zip", response.headers["Content-Disposition"])
    with zipfile.ZipFile(io.BytesIO(response.data)) as zf:
        data = zf.read("data/innovations.csv").decode()
    assert "Partagée" in data and "Secrète" not in data


def test_readers_cannot_export_or_import(app, reader):
    assert reader.get("/exchange/").status_code == 403
    assert reader.post("/exchange/export", data={"level": "network"}).status_code in (400, 403)


def test_import_preview_confirm_report_and_undo(app, editor, register_template, tmp_path):
    bundle = _peer_bundle(register_template, tmp_path)
    token = csrf_token(editor, "/exchange/")
    response = editor.post("/exchange/import", data={"bundle": (io.BytesIO(bundle), "pair.zip"), "csrf_token": token},
                           content_type="multipart/form-data")
    assert response.status_code == 302
    preview_url = response.headers["Location"]
    page = editor.get(preview_url).get_data(as_text=True)
    page = html.unescape(page)
    assert "Ville Pair" in page and "ville-pair" in page and "Aperçu de l'import" in page
    with app.app_context():
        assert db.session.scalars(db.select(Innovation).filter_by(name="Compostage de quartier")).first() is None

    response = editor.post(preview_url, data={"csrf_token": token})
    assert response.status_code == 302 and "/exchange/imports/" in response.headers["Location"]
    report_url = response.headers["Location"]
    report = editor.get(report_url).get_data(as_text=True)
    assert "Annuler cet import" in report
    innovations = editor.get("/innovations/").get_data(as_text=True)
    assert "Compostage de quartier" in innovations
    with app.app_context():
        innovation = db.session.scalars(db.select(Innovation).filter_by(name="Compostage de quartier")).one()
        uid = innovation.uid
    detail = editor.get(f"/innovations/{uid}").get_data(as_text=True)
    assert "ville-pair" in detail  # shown with its origin

    response = editor.post(report_url + "/undo", data={"csrf_token": token})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalars(db.select(Innovation).filter_by(name="Compostage de quartier")).first() is None
    assert "annulé" in editor.get(report_url).get_data(as_text=True)


def test_a_broken_file_is_refused_with_a_clear_message(app, editor):
    token = csrf_token(editor, "/exchange/")
    response = editor.post("/exchange/import", data={"bundle": (io.BytesIO(b"not a zip"), "x.zip"),
                                                     "csrf_token": token}, content_type="multipart/form-data")
    page = editor.get(response.headers["Location"])
    assert page.status_code == 400
    text = html.unescape(page.get_data(as_text=True))
    assert "n'est pas une archive zip lisible" in text and "Rien n'a été écrit" in text
