"""Imports in a real browser: a peer's bundle is previewed record by record, applied, found on the
Imports page with what it brought, then undone there; the register is as before (issue 11, item 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..exchange.cities import export, inside, make_city
from ..factories import make_experiment, make_innovation, make_territory
from .test_journey import SHOTS, _fill_form, _set_up, expect

pytestmark = pytest.mark.browser


def _peer_bundle(register_template: Path, tmp_path: Path) -> Path:
    peer = make_city(register_template, tmp_path / "peer", "saint-louis", name="Ville de Saint-Louis")
    with inside(peer):
        territory = make_territory(name="Quartier Nord", visibility="network")
        innovation = make_innovation(name="Compostage de quartier", visibility="network")
        make_experiment(innovation, title="Essai au quartier Nord", territory=territory.uid, visibility="network")
    return export(peer, tmp_path / "saint-louis.registre.zip")


def _innovations(page) -> list[str]:
    page.goto(page.base + "/innovations/")
    return sorted(page.locator("main table.list tbody tr td:first-child a").all_inner_texts())


def test_import_a_bundle_see_its_records_then_undo_it_from_the_imports_page(page, register_template, tmp_path):
    bundle = _peer_bundle(register_template, tmp_path)
    base = page.base
    page.goto(base + "/")
    _set_up(page, city="Ville de Port-Sable", country="SN", code="port-sable", admin="fatou")
    page.goto(base + "/innovations/new")
    _fill_form(page, {"name": "Éclairage solaire", "tagline": "Saisie à la main"}, {}, checks=[])
    before = _innovations(page)
    assert before == ["Éclairage solaire"]

    page.goto(base + "/exchange/")
    page.set_input_files("input[name='bundle']", str(bundle))
    page.click("text=Vérifier le paquet")
    assert "Aperçu de l'import" in page.locator("h1").inner_text()
    records = page.locator("table.import-records").inner_text()
    assert "Compostage de quartier" in records and "Essai au quartier Nord" in records and "Quartier Nord" in records
    assert "nouvelles (3)" in page.locator("nav.tabs").inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "imports-preview.png"), full_page=True)
    page.click("button:has-text('Importer')")
    assert "Rapport d'import" in page.locator("h1").inner_text()
    assert _innovations(page) == ["Compostage de quartier", "Éclairage solaire"]

    page.click("nav.menu a:has-text('Imports')")
    assert page.locator("h1").inner_text() == "Imports"
    assert "saint-louis.registre.zip" in page.locator("table.imports").inner_text()
    page.click("table.imports tbody tr:first-child td:first-child a")
    expect(page.locator("table.import-records a:has-text('Compostage de quartier')")).to_have_count(1)
    assert "piu-import-" in page.locator("dl.facts").inner_text()  # the backup taken before it
    page.screenshot(path=str(SHOTS / "imports-detail.png"), full_page=True)
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Annuler cet import')")
    assert "Import annulé" in page.locator("main").inner_text()
    assert "annulé le" in page.locator("dl.facts").inner_text()
    assert _innovations(page) == before
