"""Two cities in a real browser: one exports its bundle, the other imports it through the
interface, sees the peer's innovation marked with its origin, then undoes the import."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import serve
from .test_journey import SHOTS, _fill_form, _set_up

pytestmark = pytest.mark.browser


@pytest.fixture
def peer_server(tmp_path: Path):
    with serve(tmp_path / "peer", "browser-tests-peer") as url:
        yield url


def test_export_import_see_origin_and_undo(browser, page, peer_server, tmp_path):
    # the peer city records an innovation and exports its network bundle
    peer_context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR", accept_downloads=True)
    peer = peer_context.new_page()
    peer.set_default_timeout(15_000)
    peer.goto(peer_server + "/")
    _set_up(peer, city="Ville de Saint-Louis", country="SN", code="saint-louis", admin="awa")
    peer.goto(peer_server + "/innovations/new")
    _fill_form(peer, {"name": "Compostage de quartier", "tagline": "Des bacs partagés gérés par les habitants"},
               {"deployment_stage": "Pilote sur 1 site"}, checks=[("themes", "waste_circular")])
    peer.goto(peer_server + "/exchange/")
    peer.check("input[name='level'][value='network']")
    with peer.expect_download() as download_info:
        peer.click("text=Télécharger le paquet (.zip)")
    bundle = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(bundle)
    assert bundle.name.startswith("saint-louis-") and bundle.name.endswith(".registre.zip")
    peer_context.close()

    # our city imports it: upload, preview, confirm
    base = page.base
    page.goto(base + "/")
    _set_up(page, city="Ville de Port-Sable", country="SN", code="port-sable", admin="fatou")
    page.goto(base + "/exchange/")
    page.set_input_files("input[name='bundle']", str(bundle))
    page.click("text=Vérifier le paquet")
    assert "Aperçu de l'import" in page.locator("h1").inner_text()
    assert "Ville de Saint-Louis" in page.locator("main").inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "exchange-preview.png"), full_page=True)
    page.click("button:has-text('Importer')")
    assert "Rapport d'import" in page.locator("h1").inner_text()

    # the peer's innovation is there, read-only, with its origin
    page.goto(base + "/innovations/")
    page.click("text=Compostage de quartier")
    assert "saint-louis" in page.locator(".origin").first.inner_text()
    page.wait_for_load_state()  # the whole page is read before saying a link is not on it
    assert page.locator("a:has-text('Modifier')").count() == 0
    page.screenshot(path=str(SHOTS / "exchange-foreign-innovation.png"), full_page=True)

    # undo the import
    page.goto(base + "/exchange/")
    page.click("table.list a")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Annuler cet import')")
    assert "Import annulé" in page.locator("main").inner_text()
    page.goto(base + "/innovations/")
    assert "Compostage de quartier" not in page.locator("main").inner_text()
