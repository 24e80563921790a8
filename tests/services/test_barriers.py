"""The barrier catalogue: its vocabularies, similar barriers, creation, lessons citing barriers, citation counts."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from piu_app.extensions import db
from piu_app.models import Board, ChangeLog, ImportBatch, NoteTheme, StickyNote, Workshop
from piu_app.registry import BARRIERS, LESSONS
from piu_app.services import InvalidInputError, NotFoundError, PermissionDeniedError, records, vocabularies
from piu_app.services import barriers as barrier_service
from piu_app.services import search as search_service
from tests.factories import make, make_experiment, make_foreign, make_innovation, make_territory


def _barrier(label: str, **values):
    return barrier_service.create(label, username="test", **values)


def _lesson(title: str = "Retour sur le pilote", **values):
    return make("lessons", title=title, **values)


def _cite(lesson, *barriers):
    for b in barriers:
        records.add_citation(LESSONS, lesson, "barriers", target_uid=b.uid, username="test")


def _workshop(title: str = "Atelier freins", *, origin: str = "test-city", territory=None) -> Board:
    workshop = Workshop(title=title, origin_instance=origin, territory=territory)
    board = Board(workshop=workshop, title="Freins à l'innovation urbaine", board_kind="barriers")
    db.session.add_all([workshop, board])
    db.session.flush()
    return board


def _note(board: Board, barrier, n: int, **values) -> StickyNote:
    note = StickyNote(board=board, text=f"note {n}", client_key=f"key-{board.id}-{n}", promoted_kind="barrier",
                      promoted_uid=barrier.uid, **values)
    db.session.add(note)
    db.session.flush()
    return note


def test_the_vocabularies_are_seeded_in_french_and_english(ctx):
    fr = dict(vocabularies.choices("barrier_actor_group", "fr"))
    en = dict(vocabularies.choices("barrier_actor_group", "en"))
    assert set(fr) == {"buyers", "carriers", "facilitators", "buyer_carrier_relation", "territory"}
    assert fr["buyers"] == "Acheteurs (collectivités, aménageurs, promoteurs)" and en["buyers"].startswith("Buyers")
    assert fr["buyer_carrier_relation"] == "Relation acheteur-porteur"
    natures = dict(vocabularies.choices("barrier_nature", "fr"))
    assert len(natures) == 11 and natures["timing"] == "Temporalités (cycles de décision vs start-up)"
    assert dict(vocabularies.choices("barrier_nature", "en"))["legal_procurement"] == "Legal / public procurement"


def test_create_goes_through_the_register(ctx):
    barrier = _barrier("Délais de paiement trop longs", description="Trois à six mois d'attente",
                       actor_group="buyer_carrier_relation", nature="funding_business_model",
                       levers="Avance de 30 %", themes=["economy_jobs"])
    assert barrier.version == 1 and barrier.origin_instance == "test-city" and barrier.visibility == "network"
    assert barrier.sort_key == "delais de paiement trop longs"
    log = db.session.scalars(db.select(ChangeLog).filter_by(record_uid=barrier.uid)).all()
    assert [e.action for e in log] == ["create"] and log[0].changes["levers"] == ["", "Avance de 30 %"]
    results, total = search_service.search("paiement", record_types=["barriers"])
    assert total == 1 and results[0].record.uid == barrier.uid


@pytest.mark.parametrize("values, field", [
    ({"label": ""}, "label"),
    ({"label": "x" * 201}, "label"),
    ({"label": "Frein\x00"}, "label"),
    ({"label": "Frein", "actor_group": "elected_officials"}, "actor_group"),
    ({"label": "Frein", "nature": "weather"}, "nature"),
    ({"label": "Frein", "description": "a\x1bb"}, "description"),
    ({"label": "Frein", "themes": ["no-such-theme"]}, "themes"),
])
def test_create_refuses_bad_values_and_saves_nothing(ctx, values, field):
    values = dict(values)  # the parameters are shared by both engines' runs: never changed in place
    label = values.pop("label")
    with pytest.raises(InvalidInputError) as err:
        _barrier(label, **values)
    assert field in err.value.field_errors
    db.session.rollback()
    assert records.list_records(BARRIERS).total == 0


def test_create_refuses_values_that_are_not_text(ctx):
    with pytest.raises(InvalidInputError):
        barrier_service.create(["Frein"], username="test")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        barrier_service.create("Frein", levers=12, username="test")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        barrier_service.create("Frein", themes="mobility", username="test")  # type: ignore[arg-type]


def test_similar_finds_shared_words_whatever_accents_case_and_plural(ctx):
    paiement = _barrier("Délais de paiement trop longs", actor_group="buyer_carrier_relation")
    _barrier("Terrains d'expérimentation introuvables", actor_group="territory")
    found = barrier_service.similar("les DELAIS de PAIEMENTS nous tuent")
    assert found == [paiement]
    assert barrier_service.similar("Oui !") == []
    assert barrier_service.similar("") == []


def test_similar_puts_the_same_actor_group_first_then_the_most_words(ctx):
    buyers = _barrier("Budget de maintenance absent", actor_group="buyers")
    carriers = _barrier("Maintenance des équipements coûteuse", actor_group="carriers",
                        description="Budget de maintenance et équipements à renouveler")
    assert barrier_service.similar("pas de budget pour la maintenance des équipements") == [carriers, buyers]
    assert barrier_service.similar("pas de budget pour la maintenance des équipements", actor_group="buyers") \
        == [buyers, carriers]
    assert barrier_service.similar("maintenance", limit=1) == [buyers]  # same score: by label


def test_similar_leaves_out_deleted_barriers_and_refuses_hostile_input(ctx):
    gone = _barrier("Réseau mobile instable")
    records.delete(BARRIERS, gone, username="test")
    assert barrier_service.similar("réseau mobile") == []
    with pytest.raises(InvalidInputError):
        barrier_service.similar("x" * (barrier_service.MAX_TEXT_LENGTH + 1))
    with pytest.raises(InvalidInputError):
        barrier_service.similar(None)  # type: ignore[arg-type]


def test_a_lesson_cites_a_barrier_once_with_history_and_can_stop(ctx):
    barrier, lesson = _barrier("Peur de l'échec"), _lesson()
    _cite(lesson, barrier)
    _cite(lesson, barrier)  # twice: still one citation, one history entry
    assert lesson.barriers == [barrier] and lesson.version == 2
    assert records.history(lesson)[0].changes == {"barriers": ["", "Peur de l'échec"]}
    [(owner, citation, owners)] = records.reverse_citations(BARRIERS, barrier)
    assert owner is LESSONS and owners == [lesson]
    entries = records.history_in_words(LESSONS, lesson, {})
    assert entries[0].rows[0].label == "Freins rencontrés" and entries[0].rows[0].after == "Peur de l'échec"
    records.remove_citation(LESSONS, lesson, "barriers", target_uid=barrier.uid, username="test")
    assert lesson.barriers == [] and lesson.version == 3
    with pytest.raises(NotFoundError):
        records.remove_citation(LESSONS, lesson, "barriers", target_uid=barrier.uid, username="test")


def test_citing_needs_a_live_barrier_and_an_own_lesson(ctx):
    barrier, lesson = _barrier("Peur de l'échec"), _lesson()
    records.delete(BARRIERS, barrier, username="test")
    with pytest.raises(InvalidInputError):
        _cite(lesson, barrier)
    with pytest.raises(NotFoundError):
        records.add_citation(LESSONS, lesson, "no-such-citation", target_uid=barrier.uid, username="test")
    foreign = make_foreign("lessons", title="Leçon d'une autre ville")
    with pytest.raises(PermissionDeniedError):
        _cite(foreign, _barrier("Autre frein"))


def test_citations_count_lessons_notes_and_themes_where_they_were_cited(ctx):
    dakar = make_territory(name="Dakar")
    experiment = make_experiment(make_innovation(), territory=dakar.uid)
    paiement, foncier, never = _barrier("Délais de paiement"), _barrier("Foncier rare"), _barrier("Jamais cité")
    _cite(_lesson("Leçon A", experiment=experiment.uid), paiement, foncier)
    _cite(_lesson("Leçon B"), paiement)
    peer_lesson = make_foreign("lessons", origin="dune-blanche", title="Leçon du pair")
    peer_lesson.barriers.append(paiement)  # as its bundle brings it
    db.session.add(ImportBatch(kind="bundle", filename="b.zip", username="t", origin_instance="dune-blanche",
                               origin_name="Commune de Dune-Blanche"))
    board = _workshop(territory=dakar)
    _note(board, paiement, 1)
    _note(board, paiement, 2, hidden=True)     # hidden by the facilitator: counted nowhere
    _note(board, paiement, 3, pending=True)    # still in the moderation inbox
    _note(board, foncier, 4)
    db.session.add(NoteTheme(board=board, label="Trésorerie", promoted_kind="barrier", promoted_uid=paiement.uid))
    db.session.add(NoteTheme(board=board, label="Besoin", promoted_kind="need", promoted_uid=paiement.uid))
    gone = _lesson("Leçon supprimée")
    _cite(gone, foncier)
    records.delete(LESSONS, gone, username="test")
    db.session.flush()

    counts = barrier_service.citation_counts()
    assert set(counts) == {paiement.id, foncier.id}
    c = counts[paiement.id]
    assert (c.lessons, c.notes, c.themes, c.total) == (3, 1, 1, 5)
    assert c.cities == {"test-city", "dune-blanche"} and c.territories == {"Dakar"}
    assert (counts[foncier.id].lessons, counts[foncier.id].notes) == (1, 1)

    ranking = barrier_service.most_cited()
    assert [r.barrier for r in ranking] == [paiement, foncier]
    assert ranking[0].city_names == ["Commune de Dune-Blanche", "Ville de Test"]
    assert barrier_service.citations_of(never).total == 0
    cited = barrier_service.citations_of(paiement)
    assert (cited.total, cited.city_names, cited.territory_names) == (5, ["Commune de Dune-Blanche", "Ville de Test"],
                                                                      ["Dakar"])
    [w] = cited.workshops
    assert (w.title, w.city, w.notes, w.themes) == ("Atelier freins", "Ville de Test", 1, 1)

    board.workshop.deleted = True  # a deleted workshop cites nothing
    db.session.flush()
    assert barrier_service.citation_counts([paiement.id])[paiement.id].total == 3
    records.delete(BARRIERS, paiement, username="test")  # nor is a deleted barrier ranked
    assert [r.barrier for r in barrier_service.most_cited()] == [foncier]


def test_a_peer_cannot_cite_one_of_our_private_barriers(ctx):
    """A private barrier never left this city: a peer's lesson or workshop that names it (a hand-made
    bundle can) counts for nothing; our own citations still count."""
    secret = _barrier("Frein interne", visibility="private")
    _cite(_lesson("Notre leçon"), secret)
    peer_lesson = make_foreign("lessons", origin="dune-blanche", title="Leçon du pair")
    peer_lesson.barriers.append(secret)
    peer_board = _workshop("Atelier du pair", origin="dune-blanche")
    _note(peer_board, secret, 1)
    _note(_workshop("Notre atelier"), secret, 2)
    db.session.flush()
    c = barrier_service.citation_counts()[secret.id]
    assert (c.lessons, c.notes, c.cities) == (1, 1, {"test-city"})
    cited = barrier_service.citations_of(secret)
    assert (cited.total, [w.title for w in cited.workshops]) == (2, ["Notre atelier"])


def test_the_ranking_filters_by_actor_group_and_nature(ctx):
    a = _barrier("Frein A", actor_group="buyers", nature="risk_culture")
    b = _barrier("Frein B", actor_group="territory", nature="risk_culture")
    lesson = _lesson()
    _cite(lesson, a, b)
    assert [r.barrier for r in barrier_service.most_cited(actor_group="territory")] == [b]
    assert {r.barrier for r in barrier_service.most_cited(nature="risk_culture")} == {a, b}
    assert barrier_service.most_cited(nature="timing") == []


def test_the_ranking_costs_the_same_few_queries_whatever_the_number_of_barriers(ctx):
    def queries_for(n: int) -> int:
        lesson = _lesson(f"Leçon {n}")
        board = _workshop(f"Atelier {n}")
        for i in range(n):
            b = _barrier(f"Frein {n}-{i}")
            _cite(lesson, b)
            _note(board, b, i)
        db.session.flush()
        seen = []
        listener = lambda *args: seen.append(1)  # noqa: E731
        engine = db.session.get_bind()
        event.listen(engine, "before_cursor_execute", listener)
        try:
            ranking = barrier_service.most_cited()
            [r.city_names for r in ranking]
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    assert queries_for(3) == queries_for(30) <= 10


def test_a_barriers_page_reads_its_own_notes_and_boards_from_indexes(ctx):
    """On SQLite, the statements of a barrier's page look up its citing lessons, its promoted notes and
    its themes in their indexes (migration 0014) and its boards and barriers by key: none walks a table."""
    engine = db.session.get_bind()
    if engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL plans by its statistics")
    paiement, foncier = _barrier("Délais de paiement"), _barrier("Foncier rare")
    _cite(_lesson(), paiement, foncier)
    boards = [_workshop(f"Atelier {i}") for i in range(3)]
    for i, board in enumerate(boards):
        _note(board, paiement, i)
        _note(board, foncier, 10 + i)
        db.session.add(NoteTheme(board=board, label=f"Thème {i}", promoted_kind="barrier", promoted_uid=paiement.uid))
    db.session.flush()
    seen: list[tuple[str, object]] = []
    listener = lambda _c, _cur, statement, parameters, *_: seen.append((statement, parameters))  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        cited = barrier_service.citations_of(paiement)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert (cited.citations.lessons, cited.citations.notes, cited.citations.themes, len(cited.workshops)) \
        == (1, 3, 3, 3)
    plans = {}
    for statement, parameters in seen:
        if statement.lstrip().upper().startswith("SELECT"):
            rows = db.session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            plans[statement] = " | ".join(row[-1] for row in rows)
    walked = ("SCAN sticky_notes", "SCAN note_themes", "SCAN boards", "SCAN workshops", "SCAN barriers",
              "SCAN lesson_barriers", "SCAN lessons")  # the instance's settings and its peers' names are few
    assert plans and not [p for p in plans.values() if any(w in p for w in walked)], plans

    def plan_of(start: str) -> str:
        [plan] = [p for s, p in plans.items() if " ".join(s.split()).startswith(start)]
        return plan

    assert "COVERING INDEX ix_sticky_notes_promoted" in plan_of("SELECT sticky_notes.promoted_uid")
    assert "COVERING INDEX ix_note_themes_promoted" in plan_of("SELECT note_themes.promoted_uid")
    assert "SEARCH boards USING INTEGER PRIMARY KEY" in plan_of("SELECT boards.id")
    assert "sqlite_autoindex_barriers" in plan_of("SELECT barriers.uid")
    assert "COVERING INDEX ix_lesson_barriers_barrier_id" in plan_of("SELECT lesson_barriers.barrier_id")
