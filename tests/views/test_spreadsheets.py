"""Spreadsheets through HTTP: upload → map → preview → confirm, the rules on who may import, list exports."""

from __future__ import annotations

import io
import re
from pathlib import Path

import openpyxl

from piu_app.extensions import db
from piu_app.models import ImportBatch, ImportChange, Organisation, Person
from tests.conftest import csrf_token

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "spreadsheets"


def _upload(client, record_type: str, data: bytes, filename: str):
    token = csrf_token(client, "/spreadsheets/")
    return client.post("/spreadsheets/", data={"csrf_token": token, "record_type": record_type,
                                               "file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def _post(client, path: str, data: dict, page: str):
    return client.post(path, data={"csrf_token": csrf_token(client, page), **data})


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model)) or 0


def _temp_files(app) -> list[Path]:
    area = Path(app.config["PIU_UPLOADS_DIR"]) / "tmp-spreadsheets"
    return list(area.iterdir()) if area.exists() else []


def test_the_participants_sheet_goes_through_the_four_steps(app, editor):
    response = _upload(editor, "persons", (SAMPLES / "participants-atelier.csv").read_bytes(), "../../participants.csv")
    assert response.status_code == 302
    mapping_url = response.headers["Location"]
    token = re.search(r"/spreadsheets/([A-Za-z0-9_-]{32})/mapping$", mapping_url).group(1)
    assert {p.name for p in _temp_files(app)} == {f"{token}.bin", f"{token}.json"}  # named by the token only

    page = editor.get(mapping_url).get_data(as_text=True)
    assert 'value="family_name" selected' in page and 'value="contact_consent" selected' in page
    assert "NDIAYE" in page  # sample values help the user choose

    # The user keeps the suggestions but sends job titles to "Fonction" and the actors' group to "Rôle".
    headers = ["NOM", "Prénom", "Structure", "Rôle", "Groupe d'acteurs", "Accepte d'être cité"]
    fields = ["family_name", "given_name", "organisation", "job_title", "role_kind", "contact_consent"]
    response = _post(editor, mapping_url, {f"col-{i}": f for i, f in enumerate(fields)}, mapping_url)
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/{token}/preview")

    preview_url = f"/spreadsheets/{token}/preview"
    page = editor.get(preview_url).get_data(as_text=True)
    assert "Valeurs à faire correspondre" in page and "« Acheteur »" in page
    assert "Rien n&#39;est encore enregistré" in page or "Rien n'est encore enregistré" in page
    assert _count(app, Person) == 0
    assert len(headers) == len(fields)

    response = _post(editor, f"/spreadsheets/{token}/values",
                     {"value:role_kind:porteur": "porteur", "value:role_kind:acheteur": "agent",
                      "value:role_kind:financeur": "", "value:role_kind:facilitateur": "?"}, preview_url)
    assert response.status_code == 302
    page = editor.get(preview_url).get_data(as_text=True)
    assert "« Acheteur »" not in page

    response = _post(editor, f"/spreadsheets/{token}/import", {}, preview_url)
    assert response.status_code == 302 and "/spreadsheets/imports/" in response.headers["Location"]
    report = editor.get(response.headers["Location"]).get_data(as_text=True)
    assert "Compte rendu d&#39;import" in report or "Compte rendu d'import" in report
    # the eight organisations named in "Structure" were not in the register: created by the same import
    assert _count(app, Person) == 8 and _count(app, Organisation) == 8 and _count(app, ImportChange) == 16
    with app.app_context():
        batch = db.session.scalars(db.select(ImportBatch)).one()
        assert batch.kind == "spreadsheet" and batch.filename == "participants.csv" and batch.username == "editor"
        traore = db.session.scalars(db.select(Person).filter_by(family_name="TRAORÉ")).one()
        assert traore.role_kind == "porteur" and traore.job_title == "Co-fondateur"
        assert traore.organisation.name == "Lumisol" and traore.organisation.org_type == "other"
    assert _temp_files(app) == []  # the file is gone once imported
    assert editor.get(preview_url).status_code == 400  # and its token with it

    # The same layout next time: the user's choices are offered again.
    response = _upload(editor, "persons", (SAMPLES / "participants-atelier.csv").read_bytes(), "p.csv")
    page = editor.get(response.headers["Location"]).get_data(as_text=True)
    assert 'value="job_title" selected' in page and 'value="role_kind" selected' in page


def test_the_funding_aids_workbook_imports_in_one_go(app, editor):
    response = _upload(editor, "funding_aids", (SAMPLES / "aides-financements.xlsx").read_bytes(), "aides.xlsx")
    token = response.headers["Location"].split("/")[-2]
    page = editor.get(f"/spreadsheets/{token}/preview").get_data(as_text=True)
    assert "ligne de total, ignorée" in page and "permanent" in page
    response = _post(editor, f"/spreadsheets/{token}/import", {}, f"/spreadsheets/{token}/preview")
    assert response.status_code == 302
    assert "6 fiches" in editor.get("/funding-aids/").get_data(as_text=True)


def test_rows_with_errors_block_the_import_until_the_user_keeps_only_valid_rows(app, editor):
    data = "Nom;TRL\r\nAbri;3\r\n;4\r\nBanc;12\r\n".encode("cp1252")
    token = _upload(editor, "innovations", data, "i.csv").headers["Location"].split("/")[-2]
    preview_url = f"/spreadsheets/{token}/preview"
    page = editor.get(preview_url).get_data(as_text=True)
    assert "valeur attendue entre 1 et 9" in page and "obligatoire" in page and 'name="valid_only"' in page
    response = _post(editor, f"/spreadsheets/{token}/import", {}, preview_url)
    assert response.status_code == 302 and response.headers["Location"].endswith("/preview")
    assert "2 ligne(s) contiennent des erreurs" in editor.get(preview_url).get_data(as_text=True)
    assert _count(app, ImportBatch) == 0
    response = _post(editor, f"/spreadsheets/{token}/import", {"valid_only": "1"}, preview_url)
    assert response.status_code == 302
    assert "1 fiche" in editor.get("/innovations/").get_data(as_text=True)


def test_a_garbage_file_gets_a_clear_message_and_writes_nothing(app, editor):
    for data, message in [(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "pas un tableur lisible"),
                          (b"", "Le fichier est vide"), (b"PK\x03\x04broken", "illisible")]:
        response = _upload(editor, "organisations", data, "photo.png")
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    assert _temp_files(app) == [] and _count(app, Organisation) == 0 and _count(app, ImportBatch) == 0


def test_readers_may_export_but_not_import(app, reader, editor):
    assert reader.get("/spreadsheets/").status_code == 403
    response = reader.post("/spreadsheets/", data={"csrf_token": csrf_token(reader, "/organisations/"),
                                                   "record_type": "organisations",
                                                   "file": (io.BytesIO(b"Nom\nA\n"), "a.csv")},
                           content_type="multipart/form-data")
    assert response.status_code == 403 and _count(app, Organisation) == 0
    assert "Importer un tableur" not in reader.get("/organisations/").get_data(as_text=True)
    assert "Importer un tableur" in editor.get("/organisations/").get_data(as_text=True)
    # An editor's upload is not reachable by another account.
    token = _upload(editor, "organisations", b"Nom;Type\nA;Start-up\n", "a.csv").headers["Location"].split("/")[-2]
    assert reader.get(f"/spreadsheets/{token}/preview").status_code == 403


def _make_organisations(editor) -> None:
    for name, org_type in [("=cmd|' /C calc'!A0", "startup"), ("Lumisol", "startup"), ("Ville", "commune")]:
        response = _post(editor, "/organisations/new", {"name": name, "org_type": org_type, "visibility": "network"},
                         "/organisations/new")
        assert response.status_code == 302


def test_xlsx_export_opens_with_real_values_and_no_formula(app, editor, reader):
    _make_organisations(editor)
    response = reader.get("/organisations/export.xlsx")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"] and ".xlsx" in response.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    cells = [c for row in sheet.iter_rows() for c in row]
    assert all(c.data_type != "f" for c in cells)
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[0][0] == "uid" and "Type de structure" in rows[0] and "Niveau de partage" in rows[0]
    names = [r[1] for r in rows[1:]]
    # The text as typed, in a text cell that no spreadsheet evaluates (quotePrefix, not an apostrophe in the value).
    assert "=cmd|' /C calc'!A0" in names and "Lumisol" in names and "Start-up" in rows[2]
    trigger = next(c for c in cells if c.value == "=cmd|' /C calc'!A0")
    assert trigger.data_type == "s" and trigger.quotePrefix
    # The list's filters hold for the export.
    filtered = openpyxl.load_workbook(io.BytesIO(reader.get("/organisations/export.xlsx?org_type=commune").data)).active
    assert [r[1].value for r in filtered.iter_rows(min_row=2)] == ["Ville"]


def test_csv_export_is_for_french_excel_and_escapes_formulas(app, editor):
    _make_organisations(editor)
    listing = editor.get("/organisations/?org_type=startup").get_data(as_text=True)
    assert "/organisations/export.csv?org_type=startup" in listing and "fichier local" in listing
    response = editor.get("/organisations/export.csv?org_type=startup")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"  # once, not twice
    assert response.data.startswith(b"\xef\xbb\xbf")
    text = response.data.decode("utf-8-sig")
    lines = text.split("\r\n")
    assert lines[0].startswith("uid;Nom;Sigle;Type de structure")
    assert len([line for line in lines[1:] if line]) == 2
    assert ";'=cmd|' /C calc'!A0;" in text and ";=cmd" not in text


def test_every_list_download_names_its_charset_once(reader):
    """Every list exports to CSV and XLSX; each answer has one Content-Type with at most one charset."""
    from piu_app.registry import RECORD_TYPES

    for key in RECORD_TYPES:
        prefix = "/" + key.replace("_", "-")
        csv_answer = reader.get(f"{prefix}/export.csv")
        assert csv_answer.status_code == 200, key
        assert csv_answer.headers["Content-Type"] == "text/csv; charset=utf-8", key
        xlsx_answer = reader.get(f"{prefix}/export.xlsx")
        assert xlsx_answer.headers["Content-Type"].count("charset") == 0, key
