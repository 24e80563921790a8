"""A city's project spreadsheet in a real browser: the officer uploads the register sample
(Windows-1252, `;`, French dates and amounts) as experiments, keeps the guessed columns, answers
the statuses the list spells otherwise, confirms once, then finds each project as an experiment
with its dates, budget and place, its innovation and its carrier, all created by that one import.

Written to be extended: `register_counts` reads what the register holds from the list pages, so a
later step (undo the import from the Imports page) can check that the register is as before.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .test_journey import SHOTS, _set_up, expect

pytestmark = pytest.mark.browser

REGISTER_CSV = Path(__file__).resolve().parents[1] / "data" / "spreadsheets" / "registre-innovations-ville-exemple.csv"
# The statuses the sheet writes that are not the list's words, and what the officer picks for them.
STATUS_ANSWERS = {"Pilote": "En cours", "Déployé": "Terminée", "Idée": "Planifiée", "Arrêté": "Abandonnée"}
LISTS = ("experiments", "innovations", "organisations", "places")


def register_counts(page) -> dict[str, int]:
    """Return how many records each list page shows (the register as the officer sees it)."""
    counts = {}
    for key in LISTS:
        page.goto(f"{page.base}/{key}/")
        text = page.locator("main p.muted").first.inner_text()
        match = re.search(r"(\d+)\s+fiche", text)
        counts[key] = int(match.group(1)) if match else 0
    return counts


def import_register_sheet(page) -> str:
    """Upload the register sample as experiments and go through mapping, preview and confirm; return the report URL."""
    page.goto(page.base + "/spreadsheets/")
    page.select_option("#record_type", label="Expérimentations")
    page.set_input_files("#file", str(REGISTER_CSV))
    page.click("button:has-text('Envoyer et associer les colonnes')")

    # mapping: every column already on its field, the carrier's columns on the innovation's carrier
    assert page.locator("h1").inner_text() == "Associer les colonnes"
    assert page.locator("#col-0").input_value() == "title"
    assert page.locator("#col-1").input_value() == "innovation.link:carriers"
    assert page.locator("#col-4").input_value() == "place"
    assert page.locator("#col-5").input_value() == "start_date"
    assert page.locator("#col-7").input_value() == "budget_total"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "spreadsheet-mapping.png"), full_page=True)
    page.click("button:has-text(\"Voir l'aperçu\")")

    # preview: the linked records to create are listed; the statuses to answer are asked
    assert page.locator("h1").inner_text() == "Aperçu de l'import"
    to_create = page.locator("#to-create")
    assert "Marché central" in to_create.inner_text() and "Propre & Vert SARL" in to_create.inner_text()
    for text, label in STATUS_ANSWERS.items():
        page.locator(f"select[name='value:status:{_key(text)}']").select_option(label=label)
    page.click("button:has-text('Appliquer ces correspondances')")
    main = page.locator("main").inner_text()
    assert "15 fiches seront créées" in main and "43 fiches liées seront créées" in main
    page.screenshot(path=str(SHOTS / "spreadsheet-preview.png"), full_page=True)

    # confirm, once
    page.click("form[action$='/import'] button:has-text('Importer')")
    assert page.locator("h1").inner_text() == "Compte rendu d'import"
    assert "15 fiche(s) créée(s), et 43 fiche(s) liée(s)" in page.locator("main").inner_text()
    page.screenshot(path=str(SHOTS / "spreadsheet-report.png"), full_page=True)
    return page.url


def _key(text: str) -> str:
    import unicodedata
    folded = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in folded if not unicodedata.combining(c))


def test_register_sheet_becomes_experiments_in_one_pass(page):
    base = page.base
    page.goto(base + "/")
    _set_up(page, city="Ville de Port-Sable", country="SN", code="port-sable", admin="fatou")
    before = register_counts(page)
    assert before == {key: 0 for key in LISTS}

    import_register_sheet(page)
    assert register_counts(page) == {"experiments": 15, "innovations": 15, "organisations": 16, "places": 12}

    # each project is an experiment with its dates, budget, status and place
    page.goto(base + "/experiments/")
    page.click("text=Collecte des déchets par tricycles électriques")
    detail = page.locator("main").inner_text()
    assert "2024-03-01" in detail and re.search(r"Budget total\s+12\s500\s000\s", detail) and "Franc CFA" in detail
    assert "Marché central" in detail and "En cours" in detail and "Convention d'expérimentation" in detail
    page.screenshot(path=str(SHOTS / "spreadsheet-experiment.png"), full_page=True)

    page.goto(base + "/experiments/")
    page.click("text=Cartographie participative des zones inondables")
    detail = page.locator("main").inner_text()
    assert "2023-09-15" in detail and "2024-06-30" in detail and re.search(r"4\s800\s000", detail)
    assert "Terminée" in detail

    # its innovation carries the themes and the carrier of the sheet
    page.click("main a:has-text('Cartographie participative des zones inondables')")
    innovation = page.locator("main").inner_text()
    assert "Association Carto-Quartiers" in innovation and "Numérique et données" in innovation

    # the place exists on its own, with the experiment that took place there
    page.goto(base + "/places/")
    page.click("text=Boulevard du Fleuve")
    assert "Éclairage public solaire intelligent" in page.locator("main").inner_text()

    # the Imports page lists it with what it brought; undoing it gives the register back as before
    page.click("nav.menu a:has-text('Imports')")
    assert "registre-innovations-ville-exemple.csv" in page.locator("table.imports").inner_text()
    page.click("table.imports tbody tr:first-child td:first-child a")
    expect(page.locator("table.import-records a:has-text('Boulevard du Fleuve')")).to_have_count(1)
    assert "piu-import-" in page.locator("dl.facts").inner_text()  # the backup taken before it
    page.screenshot(path=str(SHOTS / "spreadsheet-import-detail.png"), full_page=True)
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Annuler cet import')")
    assert "Import annulé" in page.locator("main").inner_text()
    assert register_counts(page) == before
