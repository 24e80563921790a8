"""The vocabularies page names every vocabulary in words of the reader's language, never by its internal code."""

from __future__ import annotations

import html as html_module
import re

from piu_app.vocabulary_seed import VOCABULARIES
from tests.conftest import csrf_token


def _entries(html: str) -> dict[str, str]:
    """{code in the link: text of the link} of the vocabularies listed on the page."""
    return {code: html_module.unescape(name)
            for code, name in re.findall(r'<a href="/admin/vocabularies/([a-z_]+)">([^<]+)</a>', html)}


def test_every_vocabulary_is_listed_by_its_name_in_french_then_in_english(admin):
    french = _entries(admin.get("/admin/vocabularies").get_data(as_text=True))
    assert set(french) == {"themes", *VOCABULARIES}  # all 28, themes included
    for code, name in french.items():
        assert code not in name and "_" not in name, (code, name)
    assert french["procurement_route"] == "Procédures d'achat"
    assert french["themes"] == "Thématiques"
    assert len(set(french.values())) == len(french)  # no two vocabularies share a name
    titles = list(french.values())
    assert titles.index("Devises") < titles.index("Étapes d'une expérimentation") < titles.index("Familles d'acteurs")

    admin.post("/lang/en", data={"csrf_token": csrf_token(admin, "/"), "next": "/"})
    english = _entries(admin.get("/admin/vocabularies").get_data(as_text=True))
    assert english["procurement_route"] == "Procurement procedures" and english["themes"] == "Themes"
    assert english["currency"] == "Currencies"
    assert english["outcome"] == "Experiment outcomes"
    assert list(english.values()) == sorted(english.values(), key=str.casefold)


def test_a_vocabulary_page_is_titled_by_its_name_and_counts_its_terms(admin):
    page = admin.get("/admin/vocabularies").get_data(as_text=True)
    assert re.search(r">Devises</a> <small>\(\d+ termes\)</small>", page)
    page = admin.get("/admin/vocabularies/outcome").get_data(as_text=True)
    page = html_module.unescape(page)
    assert "<h1>Résultats d'une expérimentation</h1>" in page
    assert "<title>Résultats d'une expérimentation" in page
