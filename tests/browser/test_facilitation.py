"""The facilitator groups notes into themes in a real browser: by dragging a note onto a theme, and
the same move with the keyboard only (check the note, choose the theme, press Enter)."""

from __future__ import annotations

import pytest

from .test_journey import SHOTS, _set_up

pytestmark = pytest.mark.browser


def _theme_notes(page, label: str) -> list[str]:
    section = page.locator("section.theme", has=page.locator("h3", has_text=label))
    return sorted(t.strip() for t in section.locator("li.note label").all_inner_texts())


def test_drag_a_note_into_a_theme_then_do_the_same_by_keyboard(page):
    base = page.base
    page.goto(base + "/")
    _set_up(page, city="Ville de Port-Sable", country="SN", code="port-sable", admin="fatou")

    page.click("nav.menu a:has-text('Préparer un atelier')")
    page.fill("#title", "Freins et leviers")
    page.click("button.primary")
    page.select_option("#template", "barriers")
    page.click("button:has-text('Créer le tableau')")
    page.click("button:has-text('Enregistrer')")  # the rules as proposed
    page.click("button:has-text('Ouvrir le tableau')")
    for text in ("Délais des marchés publics", "Élus frileux face au risque", "Pas de données ouvertes"):
        page.fill("#note-text", text)
        page.click("button:has-text('Ajouter le post-it')")
    page.fill("#new-theme", "Commande publique")
    page.click("button:has-text('Créer')")
    page.fill("#new-theme", "Culture du risque")
    page.click("button:has-text('Créer')")

    # Drag and drop (static/js/board.js submits the same form as the keyboard way).
    note = page.locator("#sans-theme li.note", has_text="Délais des marchés publics")
    target = page.locator("section.theme", has=page.locator("h3", has_text="Commande publique"))
    page.set_viewport_size({"width": 1280, "height": 1800})  # the note and the theme on one screen
    page.evaluate("window.scrollTo(0, document.getElementById('themes').offsetTop)")
    start, end = note.bounding_box(), target.bounding_box()
    assert 0 <= end["y"] and start["y"] + start["height"] <= 1800, (start, end)
    with page.expect_navigation():
        page.mouse.move(start["x"] + 10, start["y"] + 10)
        page.mouse.down()
        page.mouse.move(end["x"] + 30, end["y"] + end["height"] - 10, steps=8)
        page.mouse.up()
    assert _theme_notes(page, "Commande publique") == ["Délais des marchés publics"]

    # The keyboard only: focus the note's box, tick it with Space, choose the theme, press Enter.
    box = page.locator("#sans-theme li.note", has_text="Élus frileux face au risque").locator("input[type=checkbox]")
    box.focus()
    page.keyboard.press("Space")
    assert box.is_checked()
    page.focus("#group-theme")
    page.keyboard.press("ArrowDown")  # "Sans thème" → the first theme
    page.keyboard.press("ArrowDown")  # → the second theme
    assert page.locator("#group-theme option:checked").inner_text() == "Culture du risque"
    page.focus("button:has-text('Déplacer la sélection')")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert _theme_notes(page, "Culture du risque") == ["Élus frileux face au risque"]
    assert _theme_notes(page, "Commande publique") == ["Délais des marchés publics"]
    assert [t.strip() for t in page.locator("#sans-theme li.note label").all_inner_texts()] == ["Pas de données ouvertes"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "workshop-board.png"), full_page=True)
