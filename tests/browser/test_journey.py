"""The officer's main journey, in a real browser: set up the city, record a start-up and its
innovation, an experiment with its procurement and funding, a lesson learned and a review, find the
innovation without typing accents, and print its sheet."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


def expect(locator):
    """Playwright's retrying assertions. A click that opens a page returns once the page is committed,
    before it is parsed: counting at once may count a half-read page, so counts wait through this.
    (Imported late: without Playwright the `browser` fixture says why.)"""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def _fill_form(page, values: dict[str, str], selects: dict[str, str] | None = None, checks=()) -> None:
    for field, value in values.items():
        page.fill(f"#{field}", value)
    for field, label in (selects or {}).items():
        page.select_option(f"#{field}", label=label)
    for field in checks:
        page.check(f"input[name='{field[0]}'][value='{field[1]}']" if isinstance(field, tuple) else f"#{field}")
    page.click("form.record-form button[type=submit]")


def _set_up(page, *, city: str, country: str, code: str, admin: str) -> None:
    """Fill the first-start page: the city and its first administrator."""
    for field, value in (("city_name", city), ("country_code", country), ("instance_code", code),
                         ("admin_username", admin), ("admin_password", "un-mot-de-passe-solide"),
                         ("admin_password_confirm", "un-mot-de-passe-solide")):
        page.fill(f"#{field}", value)
    page.click("button.primary")


def test_officer_journey(page):
    base = page.base
    page.goto(base + "/")
    assert page.url.endswith("/setup")
    _set_up(page, city="Ville de Port-Sable", country="SN", code="port-sable", admin="fatou")
    assert page.locator("h1").inner_text().startswith("Registre de l'innovation urbaine")

    # a start-up
    page.goto(base + "/organisations/new")
    _fill_form(page, {"name": "Lumisol", "description_short": "Éclairage solaire télégéré"},
               {"org_type": "Start-up"}, checks=["is_startup"])
    assert page.locator("h1").inner_text() == "Lumisol"

    # its innovation, carried by it
    page.goto(base + "/innovations/new")
    _fill_form(page, {"name": "Éclairage public solaire intelligent",
                      "tagline": "Lampadaires autonomes à énergie solaire", "trl": "8"},
               {"deployment_stage": "Pilote sur 1 site"}, checks=[("themes", "energy_climate")])
    innovation_url = page.url
    page.fill("#carriers-q", "Lumisol")  # a typed name: the one record of exactly that name is linked
    page.select_option("#carriers-role", label="Porteur")
    page.click("section.links form button")
    assert "Lumisol" in page.locator("section.links").first.inner_text()

    # an experiment in the city, started from the innovation's page
    page.click("text=+ Nouvelle expérimentation")
    _fill_form(page, {"title": "Pilote du boulevard du Fleuve", "budget_total": "38 000 000", "start_date": "2024-01-10"},
               {"status": "En cours", "currency": "Franc CFA (UEMOA)"})
    experiment_url = page.url
    assert "Éclairage public solaire intelligent" in page.locator("dl.fields").inner_text()

    # its procurement record, with the rules of consultation attached
    page.click("text=+ Nouveau montage contractuel")
    _fill_form(page, {"title": "Achat innovant de 40 candélabres", "awarded_value": "38 000 000"},
               {"route": "Achat innovant sans publicité ni mise en concurrence"}, checks=["is_innovative"])
    page.set_input_files("#file", files=[{"name": "cctp.pdf", "mimeType": "application/pdf",
                                          "buffer": b"%PDF-1.4\n% CCTP\n"}])
    page.fill("section.documents #title", "Cahier des charges")
    page.click("section.documents button[type=submit]")
    assert "Cahier des charges" in page.locator("section.documents").inner_text()

    # a funding aid, and the funding the experiment obtained from it
    page.goto(base + "/funding-aids/new")
    _fill_form(page, {"name": "Fonds climat des villes", "max_amount": "20 000 000"}, {"aid_type": "Subvention"})
    page.goto(experiment_url)
    page.click("text=+ Nouveau financement")
    _fill_form(page, {"amount_obtained": "15 000 000"},
               {"funding_aid": "Fonds climat des villes", "status": "Obtenu"})

    # a lesson learned
    page.goto(experiment_url)
    page.click("text=+ Nouveau retour d'expérience")
    _fill_form(page, {"title": "Ce que le pilote nous a appris",
                      "what_worked": "La télégestion par SMS a réduit les pannes.",
                      "what_did_not": "Trois batteries volées la première semaine."})

    # a review with the criteria grid
    page.goto(base + f"/reviews/new?innovation={innovation_url.rsplit('/', 1)[1]}")
    _fill_form(page, {"overall_comment": "Solution robuste."},
               {"reviewer_type": "Pair ayant testé", "score__benefit": "5", "score__total_cost": "3"},
               checks=["would_recommend"])
    assert "5/5" in page.locator("section.scores").inner_text()

    # the innovation page links it all
    page.goto(innovation_url)
    overview = page.locator("section.overview").inner_text()
    for expected in ("Pilote du boulevard du Fleuve", "Ce que le pilote nous a appris",
                     "Achat innovant de 40 candélabres", "Fonds climat des villes"):
        assert expected in overview

    # search without accents
    page.fill("#q", "eclairage solaire")
    page.press("#q", "Enter")
    first = page.locator("ol.results li").first
    assert "Éclairage public solaire intelligent" in first.inner_text()
    first.locator("a").click()
    assert page.url == innovation_url

    # the one-page sheet, printed
    page.click("text=Fiche à imprimer")
    assert re.search(r"/sheet$", page.url)
    sheet = page.locator("body").inner_text()
    assert "Lumisol" in sheet and "Trois batteries volées" in sheet and "Achat innovant" in sheet
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.emulate_media(media="print")
    page.screenshot(path=str(SHOTS / "sheet-print.png"), full_page=True)
    pdf = page.pdf(format="A4", path=str(SHOTS / "sheet.pdf"))
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1, "the sheet must print on one A4 page"


def test_english_interface_and_delete_undo(page):
    base = page.base
    page.goto(base + "/setup")
    _set_up(page, city="Ville de Test", country="FR", code="test-ville", admin="admin")
    page.click("text=English")
    assert page.locator("h1").inner_text().startswith("Urban innovation register")
    page.goto(base + "/innovations/new")
    _fill_form(page, {"name": "Solar kiosks"})
    page.click("button.danger")
    assert "0 records" in page.locator("main").inner_text()
    page.click("text=Undo deletion")
    assert page.locator("h1").inner_text() == "Solar kiosks"
