"""The menu is grouped by task and shows each role what it may use (the layout itself is checked in a real
browser by tests/browser/test_phone_layout.py)."""

from __future__ import annotations

import re

from piu_app.registry import RECORD_TYPES


def _menu(client) -> dict[str, list[str]]:
    """{group name: [link paths]} of the page's menu."""
    html = client.get("/innovations/").get_data(as_text=True)
    nav = re.search(r'<nav class="menu".*?</nav>', html, re.S).group(0)
    groups = re.findall(r'<span class="menu-label" id="[^"]+">([^<]+)</span>(.*?)</ul>', nav, re.S)
    return {name: re.findall(r'<a href="([^"]+)"', body) for name, body in groups}


def test_a_reader_sees_the_register_and_peers_only(reader):
    menu = _menu(reader)
    assert list(menu) == ["Registre", "Ateliers", "Réseau", "Mon compte"]
    assert menu["Registre"] == ["/"] + [f"/{key.replace('_', '-')}/" for key in RECORD_TYPES]
    assert menu["Ateliers"] == ["/workshops/"]
    assert menu["Réseau"] == ["/peers/"]


def test_an_editor_also_exchanges_and_imports(editor):
    menu = _menu(editor)
    assert list(menu) == ["Registre", "Ateliers", "Réseau", "Mon compte"]
    assert menu["Ateliers"] == ["/workshops/", "/workshops/new"]
    assert menu["Réseau"] == ["/peers/", "/exchange/", "/spreadsheets/", "/imports/"]


def test_an_administrator_also_administers(admin):
    menu = _menu(admin)
    assert list(menu) == ["Registre", "Ateliers", "Réseau", "Administration", "Mon compte"]
    assert menu["Administration"] == ["/admin/users", "/admin/vocabularies", "/backups", "/admin/instance"]
    assert menu["Mon compte"] == ["/account"]


def test_the_menu_marks_the_page_you_are_on(admin):
    html = admin.get("/admin/vocabularies/currency").get_data(as_text=True)
    assert re.findall(r'<a href="([^"]+)" aria-current="page"', html) == ["/admin/vocabularies"]
    html = admin.get("/").get_data(as_text=True)
    assert re.findall(r'<a href="([^"]+)" aria-current="page"', html) == ["/"]
