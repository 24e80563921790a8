"""Search as a user types it: `OR`, `-mot`, snippets in one language, counts behind each filter."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piu_app.database import parse_query
from piu_app.services import search
from tests.factories import make_innovation, make_organisation


def titles(query: str, **kw) -> set[str]:
    results, total = search.search(query, **kw)
    assert total == len(results)
    return {r.record_type.title_of(r.record) for r in results}


@pytest.fixture
def register(ctx):
    make_innovation(name="Kiosque potable", tagline="Fontaine solaire", themes=["water_sanitation"],
                    visibility="public")
    make_innovation(name="Toilettes autonomes", tagline="Latrines sèches", themes=["water_sanitation"],
                    visibility="network")
    make_innovation(name="Citernes de pluie", tagline="Fontaine de récupération", themes=["energy_climate"],
                    visibility="private")
    make_organisation(name="Fontaine Vive SARL", visibility="private")


def test_or_finds_either_word(register):
    assert titles("potable OR latrines") == {"Kiosque potable", "Toilettes autonomes"}
    assert titles("potable OU latrines") == {"Kiosque potable", "Toilettes autonomes"}
    assert titles("potable latrines") == set()  # without OR, every word is required
    assert titles("potable or") == set()  # a lower-case « or » is a word like another


def test_minus_excludes_a_word(register):
    assert titles("fontaine") == {"Kiosque potable", "Citernes de pluie", "Fontaine Vive SARL"}
    assert titles("fontaine -pluie") == {"Kiosque potable", "Fontaine Vive SARL"}
    assert titles("fontaine -pluie -sarl") == {"Kiosque potable"}
    assert titles("-pluie") == set()  # nothing asked for: no result, not every record
    assert titles("kiosque-potable") == {"Kiosque potable"}  # a hyphen inside a word is no operator


def test_a_snippet_shows_the_theme_in_the_readers_language_only(register):
    results, _total = search.search("latrines", lang="fr")
    assert "Eau, assainissement, eaux pluviales" in results[0].snippet and "Water" not in results[0].snippet
    results, _total = search.search("latrines", lang="en")
    assert "Water, sanitation, stormwater" in results[0].snippet and "pluviales" not in results[0].snippet


def test_counts_behind_each_filter(register):
    counts = search.counts("fontaine")
    assert counts.types == {"innovations": 2, "organisations": 1}
    assert counts.visibilities == {"public": 1, "private": 2}
    assert counts.themes == {"water_sanitation": 1, "energy_climate": 1}
    # each filter counted with the others applied
    counts = search.counts("fontaine", visibility="private")
    assert counts.types == {"innovations": 1, "organisations": 1} and counts.visibilities["public"] == 1
    assert counts.themes == {"energy_climate": 1}
    counts = search.counts("fontaine OR latrines", theme="water_sanitation")
    assert counts.types == {"innovations": 2} and counts.visibilities == {"public": 1, "network": 1}
    assert counts.themes == {"water_sanitation": 2, "energy_climate": 1}


def test_counts_cost_three_queries_whatever_the_filters(register, monkeypatch):
    from sqlalchemy import event

    from piu_app.extensions import db

    statements: list[str] = []
    engine = db.engine
    listener = lambda *a: statements.append(a[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        search.counts("fontaine", record_types=["innovations"], visibility="public", theme="water_sanitation")
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(statements) == 3, statements  # the hits, the hits per type and level, the hits per theme


def test_theme_counts_stop_above_the_limit(register, monkeypatch):
    monkeypatch.setattr(search, "THEME_COUNT_LIMIT", 1)
    counts = search.counts("fontaine")
    assert counts.themes is None and counts.types == {"innovations": 2, "organisations": 1}
    assert search.counts("fontaine", theme="energy_climate") == search.Counts({}, {}, None, counted=False)
    monkeypatch.setattr(search, "COUNT_LIMIT", 2)
    assert search.counts("fontaine") == search.Counts({}, {}, None, counted=False)
    assert search.counts("latrines").types == {"innovations": 1}


HOSTILE = ["OR", "OU", "NOT", "AND", "NEAR", "NEAR(a b)", "title:", "{title}", ":", "*", "^", '"', "'", "(", ")",
           "-", "--", "-(", "+", "\\", ";", "%", "_", "é", "fontaine", "-fontaine", "a*", '"a', "uid:", "rank",
           "!", "&", "|", "<->", ":*", "\x00"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.lists(st.sampled_from(HOSTILE), max_size=8).map(" ".join),
                 st.lists(st.sampled_from(HOSTILE), max_size=8).map("".join), st.text(max_size=40)))
def test_hostile_queries_never_reach_the_engine_as_syntax(register, text):
    """Whatever is typed runs as plain words: no FTS5 or tsquery error, no injected operator."""
    search.search(text)
    search.counts(text)
    q = parse_query(text)
    for group in q.groups:
        for alternative in group:
            assert all(w.isalnum() or "_" in w for w in alternative)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["eau", "pluie", "potable", "sarl", "OR", "-pluie", "-eau", "-sarl", "vive"]),
                max_size=6))
def test_results_follow_the_words_required_and_excluded(register, words):
    """Every result holds a word of each group and none of the excluded words (checked on its text)."""
    query = " ".join(words)
    q = parse_query(query)
    results, _total = search.search(query)
    for r in results:
        text = r.hit.text.lower()
        assert not any(w in text.split() or f"{w}" in text.replace("'", " ").split() for w in q.excluded)


def test_the_search_page_shows_counts_and_the_operators(app, reader):
    from piu_app.database import writing
    from piu_app.extensions import db

    with app.test_request_context(), writing():
        make_innovation(name="Kiosque potable", tagline="Fontaine solaire", visibility="public")
        make_organisation(name="Fontaine Vive SARL", visibility="private")
        db.session.commit()
    page = reader.get("/search?q=fontaine").get_data(as_text=True)
    assert "Innovations (1)</option>" in page and "Public (1)</option>" in page and "Privé (local) (1)</option>" in page
    assert "« -pluie » : sans ce mot" in page
    page = reader.get("/search?q=fontaine+-sarl").get_data(as_text=True)
    assert "Kiosque potable" in page and "Fontaine Vive SARL" not in page
    page = reader.get("/search?q=-sarl").get_data(as_text=True)
    assert "Indiquez au moins un mot" in page
