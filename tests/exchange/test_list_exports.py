"""List exports (the CSV and XLSX of a list page) never run as formulas, and phone numbers stay readable.

XLSX cells are typed as text: a spreadsheet shows "+221 77 123 45 67" as typed, never evaluates
"=HYPERLINK(…)", and shows no apostrophe. CSV has no types: a text starting with = + - @ tab or CR
keeps its leading apostrophe (phone numbers included, see the docstring of exchange/spreadsheets.py).
"""

from __future__ import annotations

import io
import zipfile

import openpyxl
from hypothesis import given
from hypothesis import strategies as st

from piu_app.exchange import spreadsheets as ss
from piu_app.exchange.cells import FORMULA_TRIGGERS

PHONE = "+221 77 123 45 67"
RISKY = [PHONE, "=HYPERLINK(\"http://evil\",\"clic\")", "=cmd|' /C calc'!A0", "@SUM(A1)", "-x", "+33-1-23",
         "'=1", "''+2", "'déjà une apostrophe"]


def _sheet_xml(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return zf.read("xl/worksheets/sheet1.xml").decode()


def test_xlsx_text_cells_are_text_shown_as_typed_and_never_formulas():
    headers = ["uid", "=Nom", "Téléphone"]
    rows = [[f"r{i}", text, PHONE] for i, text in enumerate(RISKY)]
    data = ss.xlsx_bytes(headers, rows)
    assert "<f>" not in _sheet_xml(data) and "<f " not in _sheet_xml(data)  # no formula in the file at all
    book = openpyxl.load_workbook(io.BytesIO(data))
    cells = [c for row in book.active.iter_rows() for c in row]
    assert all(c.data_type == "s" for c in cells)  # every text is a text cell
    values = [[c.value for c in row] for row in book.active.iter_rows()]
    assert values[0] == ["uid", "=Nom", "Téléphone"]
    assert [row[2] for row in values[1:]] == [PHONE] * len(RISKY)  # no apostrophe in front of a phone
    # texts starting with a trigger are marked "text" for the spreadsheet, which then keeps them text when edited
    assert all(c.quotePrefix for c in cells if isinstance(c.value, str) and c.value[:1] in FORMULA_TRIGGERS)
    # read back by PIU's own spreadsheet import: the very values
    assert [cells[1] for _line, cells in ss.read_table(data).rows] == RISKY


def test_csv_keeps_the_escape_phone_numbers_included():
    data = ss.csv_bytes(["uid", "Nom"], [[f"r{i}", text] for i, text in enumerate(RISKY)]).decode("utf-8-sig")
    lines = data.split("\r\n")[1:-1]
    assert all(";" + "'" in line or ";" + '"' + "'" in line for line in lines[:6])  # each trigger: an apostrophe
    assert f"'{PHONE}" in data  # the digits of a phone survive a spreadsheet that would compute "+221 77"
    assert [cells[1] for _line, cells in ss.read_table(data.encode("utf-8-sig")).rows] == RISKY


@given(st.lists(st.text(st.sampled_from("'=+-@ab1 ") | st.characters(blacklist_categories=("Cc", "Cs")),
                        max_size=12).map(str.strip), min_size=1, max_size=6))
def test_xlsx_export_gives_back_every_text(texts):
    data = ss.xlsx_bytes(["uid", "Texte"], [[f"r{i}", t] for i, t in enumerate(texts)])
    assert "<f>" not in _sheet_xml(data)
    read = [cells[1] for _line, cells in ss.read_table(data).rows]
    assert [r or "" for r in read] == texts
