"""Spreadsheets as cities write them: reading, French numbers and dates, mapping, preview, import, export."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from piu_app.exchange import spreadsheets as ss
from piu_app.exchange.cells import FORMULA_TRIGGERS
from piu_app.extensions import db
from piu_app.models import ImportBatch, ImportChange, SpreadsheetMapping
from piu_app.registry import RECORD_TYPES
from tests.factories import make, make_organisation

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "spreadsheets"
INNOVATIONS_CSV = "registre-innovations-ville-exemple.csv"
AIDS_XLSX = "aides-financements.xlsx"
PARTICIPANTS_CSV = "participants-atelier.csv"


def _sample(name: str) -> ss.Table:
    return ss.read_table((SAMPLES / name).read_bytes())


def _xlsx(rows: list[list[object]], merged: str | None = None) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    if merged:
        sheet.merge_cells(merged)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --------------------------------------------------------------------------- numbers

@pytest.mark.parametrize(("text", "expected"), [
    ("12 500 000", 12_500_000), ("12\u00a0500\u202f000", 12_500_000), ("12 500,50 €", 12_500.5),
    ("1.234,5", 1234.5), ("1,234.5", 1234.5), ("70 %", 70), ("3,5", 3.5), ("3.5", 3.5), ("-4", -4),
    ("1,5 M€", 1_500_000), ("30 000 000 FCFA", 30_000_000), ("200 000 €", 200_000), ("12k", 12_000),
    ("1.234.567", 1_234_567), ("1'000", 1000), (42, 42), (2.5, 2.5),
])
def test_french_numbers(text, expected):
    assert ss.parse_number(text) == expected


@pytest.mark.parametrize("text", ["", "douze", "12,", "1.2.3", "12 mois", "1,23,4", "--3", True])
def test_what_is_not_a_number_is_refused(text):
    with pytest.raises(ValueError):
        ss.parse_number(text)


def test_amounts_tell_their_currency():
    assert ss.parse_amount("1,5 M€") == (1_500_000, "EUR")
    assert ss.parse_amount("30 000 000 FCFA") == (30_000_000, "XOF")
    assert ss.parse_amount("500 USD") == (500, "USD")
    assert ss.parse_amount("12 500") == (12_500, None)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_integers_written_the_french_way_read_back(n):
    grouped = f"{n:,}".replace(",", "\u202f")
    assert ss.parse_number(grouped) == n
    assert ss.parse_number(f"{n:,}".replace(",", " ")) == n


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False, allow_infinity=False))
def test_decimals_with_a_comma_read_back(d):
    text = f"{d:,.2f}".replace(",", " ").replace(".", ",")
    assert ss.parse_number(text) == pytest.approx(float(d))
    assert ss.parse_number(text + " €") == pytest.approx(float(d))


# --------------------------------------------------------------------------- dates and booleans

@pytest.mark.parametrize(("text", "expected"), [
    ("12/03/2024", dt.date(2024, 3, 12)), ("1/3/24", dt.date(2024, 3, 1)), ("12.03.2024", dt.date(2024, 3, 12)),
    ("12 mars 2024", dt.date(2024, 3, 12)), ("1er août 2025", dt.date(2025, 8, 1)), ("mars 2024", dt.date(2024, 3, 1)),
    ("Févr. 2023", dt.date(2023, 2, 1)), ("03/2024", dt.date(2024, 3, 1)), ("2024-03-12", dt.date(2024, 3, 12)),
    ("2024-03-12T10:00:00", dt.date(2024, 3, 12)), ("12/03/2024 14:30", dt.date(2024, 3, 12)),
    ("lundi 4 novembre 2024", dt.date(2024, 11, 4)), (dt.datetime(2025, 6, 30), dt.date(2025, 6, 30)),
    (45_000, dt.date(2023, 3, 15)), (2021, dt.date(2021, 1, 1)), ("2021", dt.date(2021, 1, 1)),
])
def test_french_dates(text, expected):
    assert ss.parse_date(text) == expected


@pytest.mark.parametrize("text", ["31/02/2024", "permanent", "13/13/2024", "12 brumaire 2024", "1/1/1700", ""])
def test_what_is_not_a_date_is_refused(text):
    with pytest.raises(ValueError):
        ss.parse_date(text)


@given(st.dates(min_value=dt.date(1800, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_every_date_reads_back_in_every_form(d):
    assert ss.parse_date(d.strftime("%d/%m/%Y")) == d
    assert ss.parse_date(d.isoformat()) == d
    months = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
              "novembre", "décembre"]
    assert ss.parse_date(f"{d.day} {months[d.month - 1]} {d.year}") == d


@pytest.mark.parametrize(("text", "expected"), [
    ("oui", True), ("OUI", True), ("x", True), ("Vrai", True), ("yes", True), ("1", True), (1, True),
    ("non", False), ("Faux", False), ("no", False), ("0", False), ("", None), (None, None),
])
def test_booleans(text, expected):
    assert ss.parse_bool(text) is expected


def test_multi_value_cells_split_on_the_usual_separators():
    assert ss.split_values("Mobilité; Énergie") == ["Mobilité", "Énergie"]
    assert ss.split_values("Eau / Déchets, Santé") == ["Eau", "Déchets", "Santé"]


# --------------------------------------------------------------------------- reading files

def test_cp1252_semicolon_crlf_csv_is_read():
    table = _sample(INNOVATIONS_CSV)
    assert table.headers[:4] == ["Nom du projet", "Porteur", "Type de structure", "Thématique(s)"]
    assert len(table.rows) == 15
    first = table.rows[0][1]
    assert first[0] == "Collecte des déchets par tricycles électriques" and first[3] == "Déchets; Mobilité"
    assert any("Windows-1252" in n for n in table.notes)


def test_utf8_bom_comma_csv_is_read():
    table = _sample(PARTICIPANTS_CSV)
    assert table.headers[0] == "NOM" and table.headers[-1] == "Accepte d'être cité"
    assert len(table.rows) == 8 and table.rows[2][1][0] == "TRAORÉ"


def test_xlsx_with_a_title_merged_cells_and_a_total_line_is_read():
    table = _sample(AIDS_XLSX)
    assert table.header_line == 3 and table.headers[0] == "Intitulé de l'aide"
    assert len(table.rows) == 6  # the total line is left out, and said so
    assert any("total" in n for n in table.notes)
    assert table.rows[0][1][5] == dt.date(2025, 6, 30)


def test_vertical_merges_are_carried_to_each_row_and_percent_cells_read_as_shown():
    data = _xlsx([["Nom", "Financeur", "Taux"], ["A", "Région", 0.7], ["B", None, None]], merged="B2:B3")
    book = openpyxl.load_workbook(io.BytesIO(data))
    book.active["C2"].number_format = "0%"
    out = io.BytesIO()
    book.save(out)
    table = ss.read_table(out.getvalue())
    assert [r[1] for r in table.rows] == [["A", "Région", 70], ["B", "Région", None]]


def test_tab_separated_utf16_is_read():
    table = ss.read_table("Nom\tSigle\nLumisol\tLMS\n".encode("utf-16"))
    assert table.headers == ["Nom", "Sigle"] and table.rows[0][1] == ["Lumisol", "LMS"]


@pytest.mark.parametrize(("data", "message"), [
    (b"", "vide"), (b"  \r\n ", "vide"), (b"\xd0\xcf\x11\xe0" + bytes(100), ".xls"),
    (b"PK\x03\x04garbage", "illisible"), (bytes(range(256)) * 20, "pas un tableur"),
    (b"Nom;Sigle\r\n", "aucune ligne"), (b"12;13\r\n14;15\r\n", "en-tête"),
])
def test_bad_files_get_a_clear_message(data, message):
    with pytest.raises(ss.SpreadsheetError) as caught:
        ss.read_table(data)
    assert message in caught.value.message.lower()


def test_too_many_rows_is_refused():
    data = ("Nom\n" + "x\n" * 30).encode()
    with pytest.raises(ss.SpreadsheetError, match="découpez"):
        ss.read_table(data, max_rows=10)


# --------------------------------------------------------------------------- round trips

_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")) | st.sampled_from(FORMULA_TRIGGERS[:4]),
                max_size=40).map(str.strip)
_ROW = st.tuples(_TEXT, st.integers(-(10**12), 10**12) | st.none(),
                 st.floats(-1e12, 1e12, allow_nan=False).map(lambda x: round(x, 6)) | st.none(),
                 st.dates(dt.date(1800, 1, 1), dt.date(2100, 12, 31)) | st.none())


def _read_back(row: list[object]) -> tuple[object, ...]:
    """Read cells back the way an import does (empty cells are None in XLSX, "" in CSV)."""
    text, number, amount, day = (None if cell in (None, "") else cell for cell in row[1:])
    return (ss.cell_text(text) if text is not None else "", None if number is None else ss.parse_number(number),
            None if amount is None else ss.parse_number(amount), None if day is None else ss.parse_date(day))


@given(st.lists(_ROW, min_size=1, max_size=8))
def test_csv_export_reads_back_to_the_same_values(rows):
    headers = ["uid", "Texte", "Nombre", "Montant", "Date"]
    data = ss.csv_bytes(headers, [[f"r{i}", *row] for i, row in enumerate(rows)])
    assert data.startswith(b"\xef\xbb\xbf")
    table = ss.read_table(data)
    assert table.headers == headers
    assert [_read_back(cells) for _line, cells in table.rows] == [
        (t, n, pytest.approx(a) if a is not None else None, d) for t, n, a, d in rows]


@given(st.lists(_ROW, min_size=1, max_size=8))
def test_xlsx_export_reads_back_to_the_same_values(rows):
    headers = ["uid", "Texte", "Nombre", "Montant", "Date"]
    table = ss.read_table(ss.xlsx_bytes(headers, [[f"r{i}", *row] for i, row in enumerate(rows)]))
    assert [_read_back(cells) for _line, cells in table.rows] == [
        (t, n, pytest.approx(a) if a is not None else None, d) for t, n, a, d in rows]


def test_exported_cells_never_run_as_formulas():
    headers = ["uid", "Nom"]
    rows = [["a", "=cmd|' /C calc'!A0"], ["b", "+33 1 23"], ["c", "@SUM(A1)"], ["d", "-x"]]
    csv_text = ss.csv_bytes(headers, rows).decode("utf-8-sig")
    assert "'=cmd" in csv_text and "\n=" not in csv_text and ";=" not in csv_text
    book = openpyxl.load_workbook(io.BytesIO(ss.xlsx_bytes(headers, rows)))
    cells = [c for row in book.active.iter_rows() for c in row]
    assert all(c.data_type != "f" for c in cells)
    assert [r[1][1] for r in ss.read_table(ss.xlsx_bytes(headers, rows)).rows] == [r[1] for r in rows]


def test_records_export_and_import_back_to_the_same_fields(ctx):
    org = make_organisation(name="Lumisol")
    make("innovations", name="=Éclairage; solaire", tagline="+ autonome", themes=["energy_climate", "mobility"],
         deployment_stage="pilot", trl=7, price_indication=685000.5, currency="XOF", open_source=True,
         website="https://lumisol.example")
    rt = RECORD_TYPES["innovations"]
    records = list(db.session.scalars(db.select(rt.model)))
    record = records[0]
    from piu_app.services import records as record_service
    record_service.add_link(rt, record, "carriers", target_uid=org.uid, role="carrier", username="t")
    db.session.commit()
    for fmt in ("csv", "xlsx"):
        table = ss.read_table(ss.export_rows(rt, records, fmt))
        mapping = ss.suggest_mapping(rt, table.headers)
        assert mapping["columns"]["uid"] == ""
        db.session.delete(record)  # so that the row is not taken for a duplicate
        db.session.flush()
        report = ss.preview(rt, table, mapping)
        row = report.rows[0]
        assert row.status == "ok", row.errors + row.warnings
        assert sorted(row.values.pop("themes")) == ["energy_climate", "mobility"]
        assert row.values == {"name": "=Éclairage; solaire", "tagline": "+ autonome", "trl": 7, "deployment_stage": "pilot",
                              "price_indication": 685000.5, "currency": "XOF", "open_source": True,
                              "website": "https://lumisol.example", "visibility": "network"}
        assert row.links == {"carriers": [org.uid]}
        db.session.rollback()
        records = list(db.session.scalars(db.select(rt.model)))
        record = records[0]


def test_export_includes_everything_the_officer_sees_with_human_headers(ctx):
    org = make_organisation(name="Ville de Port-Sable", org_type="commune")
    make("persons", given_name="Fatou", family_name="NDIAYE", email="fatou@ville.example", organisation=org.uid,
         consent_date=dt.date(2024, 3, 12))
    rt = RECORD_TYPES["persons"]
    book = openpyxl.load_workbook(io.BytesIO(ss.export_rows(rt, db.session.scalars(db.select(rt.model)), "xlsx")))
    header, row = [[c.value for c in r] for r in book.active.iter_rows()]
    values = dict(zip(header, row, strict=True))
    assert values["Courriel"] == "fatou@ville.example" and values["Organisation"] == "Ville de Port-Sable"
    assert values["Date du consentement"] == dt.datetime(2024, 3, 12)  # a real date cell
    assert values["Niveau de partage"] == "Privé (local)" and values["uid"]


# --------------------------------------------------------------------------- mapping, preview, import

def test_innovations_sample_imports_after_organisations(ctx):
    table = _sample(INNOVATIONS_CSV)
    orgs = RECORD_TYPES["organisations"]
    # A user importing the carriers first picks two columns of the same file.
    org_mapping = {"columns": {"Porteur": "name", "Type de structure": "org_type"}}
    report = ss.preview(orgs, table, org_mapping)
    assert report.counts["error"] == 0 and report.counts["ok"] >= 10
    assert "service municipal" in report.unknown["org_type"]
    ss.import_rows(orgs, table, org_mapping, username="editor", filename=INNOVATIONS_CSV, sha256="x")

    rt = RECORD_TYPES["innovations"]
    mapping = ss.suggest_mapping(rt, table.headers)
    assert {k: v for k, v in mapping["columns"].items() if v} == {
        "Nom du projet": "name", "Porteur": "link:carriers", "Thématique(s)": "themes", "Devise": "currency",
        "Commentaires": "description",
        "Type de structure": "link:carriers.org_type"}  # used only for a carrier the import would create
    mapping["columns"]["Statut"] = "deployment_stage"  # the column a user would add
    report = ss.preview(rt, table, mapping)
    assert report.counts["error"] == 0
    assert "en cours" in report.unknown["deployment_stage"] and "environnement" in report.unknown["themes"]
    first = report.rows[0]
    assert first.values["themes"] == ["waste_circular", "mobility"] and first.links["carriers"]
    assert "pilote" in report.unknown["deployment_stage"]  # "Pilote sur 1 site" is for the user to confirm
    # The user answers the values the vocabularies did not know; the preview then agrees.
    mapping["values"] = {"deployment_stage": {"en cours": "pilot", "pilote": "pilot", "idee": "concept",
                                              "termine": "", "arrete": "", "deploye": "early_deployment"},
                         "themes": {"environnement": "energy_climate"}}
    report = ss.preview(rt, table, mapping)
    assert report.counts == {"ok": 15, "warning": 0, "duplicate": 0, "error": 0}
    assert "=" in report.rows[3].values["description"]  # text that looks like a formula stays text

    batch = ss.import_rows(rt, table, mapping, username="editor", filename=INNOVATIONS_CSV, sha256="abc")
    db.session.commit()
    assert batch.kind == "spreadsheet" and batch.report["tables"]["innovations"]["created"] == 15
    changes = db.session.scalars(db.select(ImportChange).filter_by(batch_id=batch.id)).all()
    assert len(changes) == 15 and {c.action for c in changes} == {"created"} and all(c.before is None for c in changes)
    innovation = db.session.scalars(db.select(rt.model).filter_by(name="Éclairage public solaire intelligent")).one()
    assert [link.organisation.name for link in innovation.carrier_links] == ["Lumisol"]
    assert innovation.deployment_stage == "pilot"
    # The mapping, value answers included, is offered again for the same layout.
    assert ss.suggest_mapping(rt, table.headers)["values"]["themes"] == {"environnement": "energy_climate"}
    assert db.session.scalar(db.select(db.func.count()).select_from(SpreadsheetMapping)) == 2
    # A second import of the same file creates nothing: every row is already there.
    again = ss.preview(rt, table, mapping)
    assert again.counts["duplicate"] == 15 and again.importable == 0


def test_funding_aids_sample_imports_with_warnings_only(ctx):
    table = _sample(AIDS_XLSX)
    rt = RECORD_TYPES["funding_aids"]
    make_organisation(name="Union européenne", org_type="international_donor")
    mapping = ss.suggest_mapping(rt, table.headers)
    assert {k: v for k, v in mapping["columns"].items() if v} == {
        "Intitulé de l'aide": "name", "Financeur": "financer", "Type d'aide": "aid_type",
        "Bénéficiaires": "eligibility", "Thématiques": "themes", "Date limite de dépôt": "submission_deadline",
        "Taux max (%)": "rate_max", "Montant max": "max_amount", "Lien / contact": "origin_url"}
    report = ss.preview(rt, table, mapping)
    assert report.counts["error"] == 0 and len(report.rows) == 6
    by_name = {r.values["name"]: r for r in report.rows}
    europe = by_name["Programme européen de coopération urbaine"].values
    assert europe["rate_max"] == 70 and europe["max_amount"] == 1_500_000 and europe["currency"] == "EUR"
    assert europe["submission_deadline"] == dt.date(2025, 11, 3) and europe["financer"]
    loan = by_name["Prêt d'amorçage start-up"]
    assert loan.values["max_amount"] == 30_000_000 and loan.values["currency"] == "XOF"
    assert any("XAF" in w for w in loan.warnings) and any("Toutes" in w for w in loan.warnings)
    incubator = by_name["Accompagnement incubateur municipal"]
    assert "submission_deadline" not in incubator.values and any("permanent" in w for w in incubator.warnings)
    assert incubator.values["origin_url"] == "mailto:incubateur@ville.example"
    assert by_name["Dotation de soutien aux tiers-lieux"].values["submission_deadline"] == dt.date(2025, 12, 31)
    assert "ministere" in report.unknown["financer"]
    batch = ss.import_rows(rt, table, mapping, username="editor", filename=AIDS_XLSX, sha256="x")
    assert batch.report["tables"]["funding_aids"]["created"] == 6


def test_participants_sample_imports_as_persons(ctx):
    table = _sample(PARTICIPANTS_CSV)
    rt = RECORD_TYPES["persons"]
    make_organisation(name="Lumisol")
    mapping = ss.suggest_mapping(rt, table.headers)
    assert mapping["columns"]["NOM"] == "family_name" and mapping["columns"]["Prénom"] == "given_name"
    assert mapping["columns"]["Structure"] == "organisation"
    assert mapping["columns"]["Accepte d'être cité"] == "contact_consent"
    # What a user would pick: the "Rôle" column holds job titles, the actors' group is the role.
    mapping["columns"].update({"Rôle": "job_title", "Groupe d'acteurs": "role_kind"})
    mapping["values"] = {"role_kind": {"porteur": "porteur", "acheteur": "agent", "financeur": ""}}
    report = ss.preview(rt, table, mapping)
    assert report.counts["error"] == 0
    traore = report.rows[2]
    assert traore.title == "Ibrahim TRAORÉ" and traore.values["contact_consent"] is False
    assert traore.values["organisation"] and traore.values["role_kind"] == "porteur"
    assert "contact_consent" not in report.rows[4].values  # the empty consent cell stays "no consent"
    batch = ss.import_rows(rt, table, mapping, username="editor", filename=PARTICIPANTS_CSV, sha256="x")
    assert batch.report["tables"]["persons"]["created"] == 8
    person = db.session.scalars(db.select(rt.model).filter_by(family_name="TRAORÉ")).one()
    assert person.visibility == "private" and person.job_title == "Co-fondateur" and not person.contact_consent


def test_errors_block_the_import_unless_the_user_keeps_the_valid_rows(ctx):
    rt = RECORD_TYPES["innovations"]
    data = ("Nom;TRL;Site web;Début\r\nA;7;https://a.example;\r\n;3;;\r\nC;12;;\r\nD;sept;;\r\n"
            "E;2;x;\r\n").encode("cp1252")
    table = ss.read_table(data)
    mapping = {"columns": {"Nom": "name", "TRL": "trl", "Site web": "website", "Début": ""}}
    report = ss.preview(rt, table, mapping)
    assert [r.status for r in report.rows] == ["ok", "error", "error", "error", "warning"]
    assert "obligatoire" in report.rows[1].errors[0]
    assert "entre 1 et 9" in report.rows[2].errors[0] and "« 12 »" in report.rows[2].errors[0]
    assert "pas un nombre" in report.rows[3].errors[0]
    with pytest.raises(ss.InvalidInputError, match="3 ligne"):
        ss.import_rows(rt, table, mapping, username="editor", filename="f.csv", sha256="x")
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count()).select_from(rt.model)) == 0
    assert db.session.scalar(db.select(db.func.count()).select_from(ImportBatch)) == 0
    batch = ss.import_rows(rt, table, mapping, username="editor", filename="f.csv", sha256="x", valid_only=True)
    assert batch.report["tables"]["innovations"] == {"created": 2, "updated": 0, "unchanged": 0, "skipped": 3,
                                                     "conflicts": 0}
    assert [s["line"] for s in batch.report["skipped"]] == [3, 4, 5]


def test_required_vocabulary_falls_back_to_other_and_unknown_optional_values_are_left_empty(ctx):
    rt = RECORD_TYPES["organisations"]
    table = ss.read_table("Nom,Type,Taille\nCoop Vélo Fret,Coopérative,Géante\nLumisol,Start-up,PME\n".encode())
    mapping = {"columns": {"Nom": "name", "Type": "org_type", "Taille": "size_band"}}
    rows = ss.preview(rt, table, mapping).rows
    assert rows[0].values == {"name": "Coop Vélo Fret", "org_type": "other"} and len(rows[0].warnings) == 2
    assert rows[1].values == {"name": "Lumisol", "org_type": "startup", "size_band": "PME"} and rows[1].status == "ok"


def test_clean_mapping_drops_unknown_targets_and_second_uses():
    rt = RECORD_TYPES["organisations"]
    cleaned = ss.clean_mapping(rt, ["A", "B", "C"], {"columns": {"A": "name", "B": "name", "C": "password"}})
    assert cleaned["columns"] == {"A": "name", "B": "", "C": ""}
