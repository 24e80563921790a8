"""Full-text search: accent- and case-insensitive, ranked, filtered, kept in sync with the records."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from piu_app.database import fold, search_terms
from piu_app.extensions import db
from piu_app.registry import INNOVATIONS
from piu_app.services import records, search
from tests.factories import make_innovation, make_organisation


def titles(query: str, **kw) -> list[str]:
    results, _total = search.search(query, **kw)
    return [r.record_type.title_of(r.record) for r in results]


def test_accentless_query_finds_accented_text(ctx):
    make_innovation(name="Énergie solaire pour les écoles", tagline="Panneaux sur les toits")
    make_innovation(name="Collecte des déchets", tagline="Tricycles électriques", themes=["waste_circular"])
    assert titles("energie solaire") == ["Énergie solaire pour les écoles"]
    assert titles("ÉNERGIE") == ["Énergie solaire pour les écoles"]
    assert titles("dechets") == ["Collecte des déchets"]
    assert titles("electri") == ["Collecte des déchets"]  # the last word matches as a prefix


def test_title_matches_rank_before_body_matches(ctx):
    make_innovation(name="Kiosque d'eau", description="Fonctionne à l'énergie solaire.")
    make_innovation(name="Lampes solaires", description="Éclairage.")
    assert titles("solaire")[0] == "Lampes solaires"


def test_index_follows_updates_deletions_and_restores(ctx):
    innovation = make_innovation(name="Abri intelligent")
    records.update(INNOVATIONS, innovation, {"name": "Abri connecté"}, username="t")
    assert titles("intelligent") == [] and titles("connecte") == ["Abri connecté"]
    records.delete(INNOVATIONS, innovation, username="t")
    assert titles("connecte") == []
    records.restore(INNOVATIONS, innovation, username="t")
    assert titles("connecte") == ["Abri connecté"]


def test_filters_by_type_visibility_and_theme(ctx):
    make_innovation(name="Solaire réseau", visibility="network", themes=["energy_climate"])
    make_innovation(name="Solaire public", visibility="public", themes=["mobility"])
    make_organisation(name="Solaire SARL")
    assert set(titles("solaire")) == {"Solaire réseau", "Solaire public", "Solaire SARL"}
    assert set(titles("solaire", record_types=["innovations"])) == {"Solaire réseau", "Solaire public"}
    assert titles("solaire", visibility="public") == ["Solaire public"]
    assert titles("solaire", theme="mobility") == ["Solaire public"]


def test_carrier_names_find_their_innovations(ctx):
    innovation = make_innovation(name="Lampadaires")
    lumisol = make_organisation(name="Lumisol")
    records.add_link(INNOVATIONS, innovation, "carriers", target_uid=lumisol.uid, role="carrier", username="t")
    assert "Lampadaires" in titles("lumisol")


def test_rebuild_matches_incremental_index(ctx):
    make_innovation(name="Pavés en plastique recyclé")
    assert search.rebuild() == 1 + 0  # one live record besides seeded themes (not indexed)
    assert titles("paves recycle") == ["Pavés en plastique recyclé"]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_user_input_is_a_safe_query(text):
    """Quotes, stars, parentheses, NEAR, AND…: whatever is typed becomes plain words."""
    for term in search_terms(text):
        assert term and '"' not in term and "*" not in term and fold(term) == term


def test_operators_typed_by_users_do_not_break_search(ctx):
    make_innovation(name="Énergie solaire")
    for query in ['"energie', "solaire*", "NEAR(a b)", "a OR", "(", "-solaire", "énergie AND", "^", ":"]:
        search.search(query)  # no syntax error reaches the user


def test_bulk_index_text_is_the_text_of_a_saved_record(ctx):
    """An import indexes thousands of records with plain SQL (`entries_of`); a record saved from its
    form is indexed from the loaded object (`_entry`). Both must give the same words, for every
    record type, or a peer's record would be found differently from one's own (the order of the
    lines of text, e.g. of two carriers, does not matter to a search)."""

    def words(entries):
        return sorted((e.record_type, e.uid, e.visibility, e.title, sorted(e.body.split("\n"))) for e in entries)

    from piu_app.extensions import db
    from piu_app.registry import RECORD_TYPES
    from piu_app.services import demo

    demo.load()
    db.session.flush()
    for rt in RECORD_TYPES.values():
        records_ = list(db.session.scalars(db.select(rt.model)))
        assert records_, rt.key
        bulk, gone = search.entries_of(rt, [r.id for r in records_])
        one_by_one = [search._entry(rt, r) for r in records_ if not r.deleted]
        assert words(bulk) == words(one_by_one), rt.key
        assert gone == [r.uid for r in records_ if r.deleted]


def test_a_word_in_many_titles_ranks_the_newest_ones_first_and_pages_never_repeat(ctx, monkeypatch):
    """Above RANK_ALL_UP_TO hits, ranking every hit grows with the register (bm25, ~1 µs a hit): the
    records whose title holds the words come first, then the others; in each group the most recent
    RANK_WINDOW are ranked and the older follow, most recent first. Paging shows every hit once."""
    import piu_app.database as database

    monkeypatch.setattr(database, "RANK_ALL_UP_TO", 3)
    monkeypatch.setattr(database, "RANK_WINDOW", 2)
    for n in range(5):
        make_innovation(name=f"Fontaine publique n°{n}", tagline="Accès à l'eau")
    for n in range(4):
        make_innovation(name=f"Kiosque n°{n}", tagline="Près de la fontaine du marché")
    seen: list[str] = []
    for page in range(1, 7):
        results, total = search.search("fontaine", page=page, page_size=2)
        assert total == 9
        seen += [r.record.name for r in results]
    assert sorted(seen) == sorted([f"Fontaine publique n°{n}" for n in range(5)] + [f"Kiosque n°{n}" for n in range(4)])
    titled = [name.startswith("Fontaine") for name in seen]
    assert titled == sorted(titled, reverse=True)  # every title match before any other
    if not database.is_sqlite(db.session.connection()):
        return  # PostgreSQL ranks every hit (ts_rank): the windows are SQLite's
    assert set(seen[:2]) == {"Fontaine publique n°4", "Fontaine publique n°3"}  # the newest, ranked
    assert seen[2:5] == ["Fontaine publique n°2", "Fontaine publique n°1", "Fontaine publique n°0"]  # by recency
    assert seen[7:] == ["Kiosque n°1", "Kiosque n°0"]
    odd, _total = search.search("fontaine", page=2, page_size=3)  # a page across the two parts of a group
    assert [r.record.name for r in odd] == seen[3:6]
