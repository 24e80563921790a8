"""The spreadsheet import between its steps: the file is read once, and a crafted form gets a 400.

From issue 10: item 11 ("an 8.7 MB XLSX takes 38 s and 1.8 GB, re-read at every step") and the Low
item ("a crafted field name on the spreadsheet value-mapping page answers 500").
"""

from __future__ import annotations

import html
import io
import re

import pytest

from piu_app.exchange import spreadsheets as sheets
from piu_app.extensions import db
from piu_app.models import Organisation
from tests.conftest import csrf_token
from tests.exchange.test_spreadsheets import _xlsx  # one workbook maker for both


def _upload(client, data: bytes, name: str = "structures.xlsx") -> str:
    response = client.post("/spreadsheets/", data={"csrf_token": csrf_token(client, "/spreadsheets/"),
                                                   "record_type": "organisations",
                                                   "file": (io.BytesIO(data), name)},
                           content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return re.search(r"/spreadsheets/([A-Za-z0-9_-]{32})/mapping$", response.headers["Location"]).group(1)


@pytest.mark.parametrize("field", ["value:sans-deux-points", "value:", "value:inconnu:clé", "value:name:x",
                                   "value:" + "a" * 5000 + ":b", "value:org_type:" + "k" * 600])
def test_a_crafted_field_name_on_the_value_page_answers_400_with_a_message(app, editor, field):
    token = _upload(editor, _xlsx([["Nom", "Type de structure"], ["Alpha", "Coopérative"]]))
    preview = f"/spreadsheets/{token}/preview"
    response = editor.post(f"/spreadsheets/{token}/values", data={"csrf_token": csrf_token(editor, preview),
                                                                  field: "association"})
    assert response.status_code == 400
    assert "ne correspond pas à l'aperçu" in html.unescape(response.get_data(as_text=True))
    assert editor.get(preview).status_code == 200  # the import can go on


def test_the_file_is_read_once_then_every_step_works_from_the_stored_table(app, editor, monkeypatch):
    data = _xlsx([["Liste des structures", None, None], [None, None, None],
                  ["Nom", "Type de structure", "Année de création"],
                  ["Alpha", "Association", 2015], ["Beta", None, 2016], ["Gamma", "Entreprise", 2017]],
                 merged="B4:B5")
    token = _upload(editor, data)

    def read_again(*_a, **_k):
        raise AssertionError("the uploaded file is read again")
    monkeypatch.setattr(sheets, "read_table", read_again)
    mapping = f"/spreadsheets/{token}/mapping"
    page = html.unescape(editor.get(mapping).get_data(as_text=True))
    assert "3 ligne(s) à importer" in page and "Alpha" in page
    response = editor.post(mapping, data={"csrf_token": csrf_token(editor, mapping), "col-0": "name",
                                          "col-1": "org_type", "col-2": "created_year"})
    assert response.status_code == 302
    preview = f"/spreadsheets/{token}/preview"
    assert editor.get(preview).status_code == 200
    response = editor.post(f"/spreadsheets/{token}/values", data={"csrf_token": csrf_token(editor, preview)})
    assert response.status_code == 302
    response = editor.post(f"/spreadsheets/{token}/import", data={"csrf_token": csrf_token(editor, preview),
                                                                  "valid_only": "1"})
    assert response.status_code == 302 and "/spreadsheets/imports/" in response.headers["Location"]
    with app.app_context():
        years = dict(db.session.execute(db.select(Organisation.name, Organisation.created_year)).all())
        types = dict(db.session.execute(db.select(Organisation.name, Organisation.org_type)).all())
    assert years == {"Alpha": 2015, "Beta": 2016, "Gamma": 2017}
    assert types["Alpha"] == types["Beta"], "the merged cell's value belongs to both rows"


def test_the_stored_table_keeps_every_kind_of_cell(tmp_path):
    import datetime as dt

    table = sheets.Table(["A", "B", "C", "D"], [(2, ["texte", 12, 1.5, dt.date(2024, 3, 12)]),
                                                (3, [None, True, "\x00d", "2024-01-01"])], ["note"], 1)
    path = tmp_path / "t.bin"
    sheets.save_table(table, path)
    back = sheets.load_table(path)
    assert back.headers == table.headers and back.rows == table.rows and back.notes == ["note"]
    only = sheets.load_table(path, headers=["D"], max_rows=1)
    assert only.rows == [(2, [None, None, None, dt.date(2024, 3, 12)])] and only.row_count == 2


def test_a_workbook_over_the_row_limit_is_refused_while_streaming():
    rows = [["Nom"]] + [[f"S{i}"] for i in range(60)]
    with pytest.raises(sheets.SpreadsheetError, match="dépasse"):
        sheets.read_table(_xlsx(rows), max_rows=20)
