"""Through HTTP: a city's sheet of projects becomes experiments, with the innovations, carriers and
places it names, in one pass; the participants' sheet keeps its job titles."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

from piu_app.extensions import db
from piu_app.models import Experiment, ImportBatch, ImportChange, Innovation, Organisation, Place
from tests.conftest import csrf_token

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "spreadsheets"
REGISTER_CSV = "registre-innovations-ville-exemple.csv"
STATUS_ANSWERS = {"value:status:pilote": "ongoing", "value:status:deploye": "completed",
                  "value:status:idee": "planned", "value:status:arrete": "abandoned"}


def _upload(client, record_type: str, name: str) -> str:
    token = csrf_token(client, "/spreadsheets/")
    response = client.post("/spreadsheets/", data={"csrf_token": token, "record_type": record_type,
                                                   "file": (io.BytesIO((SAMPLES / name).read_bytes()), name)},
                           content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return response.headers["Location"]


def _selected(page: str) -> dict[str, str]:
    """Return the field selected for each column of the mapping form, as the browser would send it."""
    found = {}
    for name, block in re.findall(r'<select id="(col-\d+)" name="col-\d+">(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', block)
        found[name] = chosen.group(1) if chosen else ""
    return found


def _post(client, path: str, data: dict, page: str):
    return client.post(path, data={"csrf_token": csrf_token(client, page), **data})


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model)) or 0


def test_the_register_sample_becomes_experiments_in_one_pass(app, editor):
    mapping_url = _upload(editor, "experiments", REGISTER_CSV)
    page = editor.get(mapping_url).get_data(as_text=True)
    columns = _selected(page)
    assert columns["col-0"] == "title" and columns["col-4"] == "place" and columns["col-5"] == "start_date"
    assert columns["col-1"] == "innovation.link:carriers" and columns["col-7"] == "budget_total"
    assert "(fiche créée par l&#39;import)" in page or "(fiche créée par l'import)" in page  # the linked records' fields

    response = _post(editor, mapping_url, columns, mapping_url)
    assert response.status_code == 302
    preview_url = response.headers["Location"]
    page = html.unescape(editor.get(preview_url).get_data(as_text=True))
    assert "Fiches liées à créer" in page and "à créer" in page
    assert "Marché central" in page and "Propre & Vert SARL" in page and "Type de structure : Start-up" in page
    assert "« Pilote »" in page  # a status the list spells otherwise: the user says which one
    assert _count(app, Experiment) == 0 and _count(app, Organisation) == 0

    token = re.search(r"/spreadsheets/([A-Za-z0-9_-]{32})/", preview_url).group(1)
    # the user answers the statuses, and says that "CHU" is a place to leave out
    response = _post(editor, f"/spreadsheets/{token}/values", {**STATUS_ANSWERS, "value:place:chu": ""}, preview_url)
    assert response.status_code == 302
    page = html.unescape(editor.get(preview_url).get_data(as_text=True))
    assert "« Pilote »" not in page and "15 fiches seront créées" in page
    assert "42 fiches liées seront créées" in page  # 15 innovations, 16 organisations, 11 places
    # changing one's mind: "CHU" is to be created after all
    _post(editor, f"/spreadsheets/{token}/values", {"value:place:chu": "+"}, preview_url)
    page = html.unescape(editor.get(preview_url).get_data(as_text=True))
    assert "43 fiches liées seront créées" in page

    response = _post(editor, f"/spreadsheets/{token}/import", {}, preview_url)
    assert response.status_code == 302 and "/spreadsheets/imports/" in response.headers["Location"]
    report = html.unescape(editor.get(response.headers["Location"]).get_data(as_text=True))
    assert "15 innovations" in report and "16 organisations" in report and "12 lieux" in report
    assert (_count(app, Experiment), _count(app, Innovation), _count(app, Organisation), _count(app, Place)) == (
        15, 15, 16, 12)
    with app.app_context():
        batch = db.session.scalars(db.select(ImportBatch)).one()
        assert db.session.scalar(db.select(db.func.count()).select_from(ImportChange)
                                 .filter_by(batch_id=batch.id)) == 58
        exp = db.session.scalars(db.select(Experiment).filter_by(title="Éclairage public solaire intelligent")).one()
        uid = exp.uid
    detail = html.unescape(editor.get(f"/experiments/{uid}").get_data(as_text=True))
    assert "2024-01-10" in detail and "38\u202f000\u202f000" in detail and "Boulevard du Fleuve" in detail
    assert "En cours" in detail and "Achat innovant" in detail


def test_the_participants_job_titles_are_kept(app, editor):
    mapping_url = _upload(editor, "persons", "participants-atelier.csv")
    columns = _selected(editor.get(mapping_url).get_data(as_text=True))
    assert columns["col-3"] == "job_title" and columns["col-4"] == "role_kind"


def test_a_bad_file_changes_nothing_through_the_interface(app, editor):
    mapping_url = _upload(editor, "experiments", REGISTER_CSV)
    page = editor.get(mapping_url).get_data(as_text=True)
    response = _post(editor, mapping_url, _selected(page), mapping_url)
    preview_url = response.headers["Location"]
    token = re.search(r"/spreadsheets/([A-Za-z0-9_-]{32})/", preview_url).group(1)
    response = _post(editor, f"/spreadsheets/{token}/import", {}, preview_url)  # statuses unanswered: rows in error
    assert response.status_code == 302 and response.headers["Location"].endswith("/preview")
    assert "ligne(s) contiennent des erreurs" in html.unescape(editor.get(preview_url).get_data(as_text=True))
    assert (_count(app, Experiment), _count(app, Innovation), _count(app, Organisation), _count(app, Place),
            _count(app, ImportBatch)) == (0, 0, 0, 0, 0)


def test_the_upload_form_offers_every_record_type(app, editor):
    page = editor.get("/spreadsheets/").get_data(as_text=True)
    assert 'value="experiments"' in page and 'value="places"' in page and 'value="territories"' in page
