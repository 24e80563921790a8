"""Learn from peers: likeness of territories, ranking, lessons, reviews and the contacts peers shared."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import event

from piu_app.extensions import db
from piu_app.models import ChangeLog, ImportBatch, LessonPerson, Territory
from piu_app.services import InvalidInputError, NotFoundError, peers
from piu_app.services import instance as instance_service
from tests.factories import make_experiment, make_foreign, make_innovation, make_territory


def _home() -> Any:
    home = make_territory(name="Port-Sable", country_code="SN", population=60_000, degurba_l1=2,
                          features=["littoral"])
    instance_service.set_home_territory(home.uid)
    return home


def _peer_experiment(innovation: Any, territory: Any, title: str, start: str, **values: Any) -> Any:
    return make_foreign("experiments", title=title, innovation=innovation.uid, territory=territory.uid,
                        status="completed", start_date=date.fromisoformat(start), **values)


def _world() -> dict[str, Any]:
    """Our coastal Senegalese town, a coastal Senegalese peer of its size and a French inland metropolis."""
    home = _home()
    innovation = make_innovation()
    joal = make_foreign("territories", name="Joal-Fadiouth", level="commune", country_code="SN", population=45_000,
                        degurba_l1=2, features=["littoral", "insulaire"])
    lyon = make_foreign("territories", name="Lyon", level="commune", country_code="FR", population=520_000,
                        density_fr=1, degurba_l1=1, origin="lyon")
    small = make_foreign("experiments", title="Essai à Joal", innovation=innovation.uid, territory=joal.uid,
                         status="completed", outcome="generalised", start_date=date(2021, 3, 1))
    metropolis = make_foreign("experiments", title="Essai à Lyon", innovation=innovation.uid, territory=lyon.uid,
                              status="ongoing", start_date=date(2024, 5, 1), origin="lyon")
    ours = make_experiment(innovation, title="Notre pilote", territory=home.uid)
    return {"home": home, "innovation": innovation, "joal": small, "lyon": metropolis, "ours": ours}


def test_a_similar_coastal_town_ranks_above_a_recent_inland_metropolis(ctx):
    w = _world()
    results = peers.who_tried(innovation=w["innovation"])
    assert [r.experiment.title for r in results] == ["Essai à Joal", "Essai à Lyon"]  # ours is not a peer
    joal, lyon = results
    assert joal.score == 9  # country 3 + same band 3 + same DEGURBA 2 + littoral 1
    assert joal.reasons == ["Même pays (SN)", "Même taille : 20 000 à 100 000 habitants",
                            "Même degré d'urbanisation : ville moyenne ou banlieue", "Point commun : Littoral"]
    assert lyon.score == 1 and lyon.reasons == ["Degré d'urbanisation voisin : ville"]
    assert joal.origin_name == "peer-city" and lyon.origin_name == "lyon"


def test_ties_go_to_the_most_recent_experiment_and_no_home_ranks_by_recency(ctx):
    innovation = make_innovation()
    place = make_foreign("territories", name="Mbour", level="commune", country_code="SN")
    _peer_experiment(innovation, place, "Ancien", "2019-01-01")
    _peer_experiment(innovation, place, "Récent", "2023-01-01")
    results = peers.who_tried(innovation=innovation)
    assert peers.home_territory() is None
    assert [r.experiment.title for r in results] == ["Récent", "Ancien"]
    assert all(r.score == 0 and r.reasons == [] for r in results)


def test_similarity_scoring():
    home = Territory(name="A", country_code="SN", population=150_000, density_fr=3, degurba_l1=2,
                     features="littoral;capitale")
    near = Territory(name="B", country_code="CI", population=90_000, density_fr=4, degurba_l1=1,
                     features="capitale")
    score, reasons = peers.similarity(home, near, {"capitale": "Capitale"})
    # adjacent band 1.5 + adjacent INSEE density 1 (preferred over DEGURBA) + a shared feature 1
    assert score == 3.5
    assert reasons == ["Taille voisine : 20 000 à 100 000 habitants", "Densité voisine (niveau 4 sur 7)",
                       "Point commun : Capitale"]
    unknown = Territory(name="C")
    assert peers.similarity(home, unknown) == (0.0, [])
    assert peers.similarity(None, near) == (0.0, [])
    assert [peers.population_band(n) for n in (None, 0, 19_999, 20_000, 499_999, 2_000_000)] == [None, 0, 0, 1, 2, 4]


def test_home_territory_is_configured_or_the_most_used_by_our_experiments(ctx):
    assert peers.home_territory() is None
    innovation = make_innovation()
    first, second = make_territory(name="Quartier Nord"), make_territory(name="Port-Sable")
    make_experiment(innovation, territory=first.uid)
    make_experiment(innovation, title="Deux", territory=second.uid)
    make_experiment(innovation, title="Trois", territory=second.uid)
    peer_place = make_foreign("territories", name="Ailleurs", level="commune")
    for title in ("P1", "P2", "P3"):  # a peer's experiments never make its territory ours
        _peer_experiment(innovation, peer_place, title, "2020-01-01")
    assert peers.home_territory().name == "Port-Sable"
    instance_service.set_home_territory(first.uid)
    assert peers.home_territory().name == "Quartier Nord"
    with pytest.raises(InvalidInputError):
        instance_service.set_home_territory("no-such-uid")
    instance_service.set_home_territory("")
    assert peers.home_territory().name == "Port-Sable"


def test_lessons_reviews_and_only_consenting_contacts(ctx):
    w = _world()
    shared = make_foreign("persons", given_name="Awa", family_name="Diop", email="awa@joal.sn", phone="+221 33 000",
                          contact_consent=True, visibility="public")
    secret = make_foreign("persons", given_name="Moussa", family_name="Sarr", email="moussa@joal.sn",
                          phone="+221 77 111", contact_consent=False, visibility="public")
    network_only = make_foreign("persons", given_name="Fatou", family_name="Ba", email="fatou@joal.sn",
                                contact_consent=True, visibility="network")
    lesson = make_foreign("lessons", title="Ce que Joal a appris", experiment=w["joal"].uid, author=secret.uid,
                          what_worked="Les pêcheurs ont adopté l'éclairage.", what_did_not="Le sable abîme les panneaux.")
    lesson.people_links.append(LessonPerson(person=shared, role="technical_lead"))
    lesson.people_links.append(LessonPerson(person=network_only, role="witness"))
    make_foreign("reviews", innovation=w["innovation"].uid, experiment=w["joal"].uid, reviewer_person=shared.uid,
                 reviewer_type="peer_city", would_recommend=True, scores={"benefit": 5, "maturity": 4})
    make_foreign("reviews", innovation=w["innovation"].uid, experiment=w["joal"].uid, reviewer_person=secret.uid,
                 reviewer_type="peer_city", would_recommend=False, scores={"benefit": 3})
    db.session.flush()

    joal = peers.who_tried(innovation=w["innovation"])[0]
    assert [lesson.title for lesson in joal.lessons] == ["Ce que Joal a appris"]
    assert joal.average_score == 4.0 and joal.recommend == (1, 2)
    assert [(c.person.family_name, c.roles, c.email, c.phone) for c in joal.contacts] == [
        ("Diop", ("technical_lead", "reviewer"), "awa@joal.sn", "+221 33 000")]


def test_deleted_records_are_left_out(ctx):
    w = _world()
    lesson = make_foreign("lessons", title="Retour supprimé", experiment=w["joal"].uid)
    review = make_foreign("reviews", innovation=w["innovation"].uid, experiment=w["joal"].uid,
                          reviewer_type="peer_city", would_recommend=True)
    lesson.deleted = review.deleted = True  # a tombstone that came in a later bundle
    w["lyon"].deleted = True
    db.session.flush()
    results = peers.who_tried(innovation=w["innovation"])
    assert [r.experiment.title for r in results] == ["Essai à Joal"]
    assert results[0].lessons == [] and results[0].reviews == []
    w["innovation"].deleted = True
    db.session.flush()
    assert peers.who_tried(theme_code="energy_climate") == []


def test_theme_query_covers_every_innovation_of_the_theme(ctx):
    w = _world()
    bus = make_innovation(name="Bus à la demande", themes=["mobility"])
    _peer_experiment(bus, w["joal"].territory, "Navette de Joal", "2022-01-01")
    assert [r.experiment.title for r in peers.who_tried(theme_code="mobility")] == ["Navette de Joal"]
    assert [r.experiment.title for r in peers.who_tried(theme_code="energy_climate")] == ["Essai à Joal", "Essai à Lyon"]
    assert peers.who_tried(theme_code="housing") == []
    assert peers.theme("mobility").code == "mobility"
    with pytest.raises(NotFoundError):
        peers.theme("nope")


def test_origin_city_is_named_by_its_bundle_and_the_limit_holds(ctx):
    w = _world()
    db.session.add(ImportBatch(origin_instance="lyon", origin_name="Métropole de Lyon"))
    db.session.flush()
    results = peers.who_tried(innovation=w["innovation"], limit=5)
    assert [r.origin_name for r in results] == ["peer-city", "Métropole de Lyon"]
    assert len(peers.who_tried(innovation=w["innovation"], limit=1)) == 1


def test_queries_do_not_grow_with_the_number_of_peers(ctx):
    w = _world()

    def count_queries() -> int:
        seen: list[str] = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731 - (conn, cursor, statement, …)
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            for r in peers.who_tried(innovation=w["innovation"]):  # and what the page reads
                assert r.experiment.territory and r.experiment.innovation
                _ = [c.person.organisation for c in r.contacts], [s.score for x in r.reviews for s in x.scores]
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(seen)

    def add_peer(n: int) -> None:
        person = make_foreign("persons", family_name=f"P{n}", email=f"p{n}@x.sn", contact_consent=True,
                              visibility="public")
        place = make_foreign("territories", name=f"Ville {n}", level="commune", country_code="SN")
        exp = _peer_experiment(w["innovation"], place, f"Essai {n}", "2020-01-01")
        make_foreign("lessons", title=f"Retour {n}", experiment=exp.uid, author=person.uid)
        make_foreign("reviews", innovation=w["innovation"].uid, experiment=exp.uid, reviewer_person=person.uid,
                     reviewer_type="peer_city", scores={"benefit": 4})

    add_peer(1)
    db.session.flush()
    few = count_queries()
    for n in range(2, 7):
        add_peer(n)
    db.session.flush()
    db.session.expire_all()
    assert count_queries() <= few + 1


def test_a_peers_own_similar_innovation_is_found_and_says_why(ctx):
    w = _world()
    lamps = make_foreign("innovations", name="Lampadaires solaires autonomes",
                         tagline="Des lampadaires à énergie solaire pour les rues sans réseau",
                         themes=["energy_climate", "safety_resilience"])
    coast = make_foreign("territories", name="Dune-Blanche", level="commune", country_code="SN", population=50_000,
                         degurba_l1=2, features=["littoral"])
    _peer_experiment(lamps, coast, "Lampadaires de la corniche", "2022-06-01")
    unrelated = make_foreign("innovations", name="Bus à la demande", tagline="Navettes réservées par téléphone",
                             themes=["mobility"])
    _peer_experiment(unrelated, coast, "Navette de Dune-Blanche", "2023-01-01")
    ours_alike = make_innovation(name="Lampadaires solaires de la mairie", themes=["energy_climate"])
    make_experiment(ours_alike, title="Notre autre pilote")  # our own experiments are never peers

    found = peers.for_innovation(w["innovation"])
    assert [r.experiment.title for r in found.same] == ["Essai à Joal", "Essai à Lyon"]
    assert [r.experiment.title for r in found.similar] == ["Lampadaires de la corniche"]
    lamp = found.similar[0]
    assert lamp.match == "similar" and lamp.experiment.innovation.name == "Lampadaires solaires autonomes"
    # energy_climate is the one theme of the test innovation: shared (2), plus three words of the tagline (3)
    assert lamp.why == ["Même thématique : « Énergie, climat, bâtiments, éclairage »",
                        "Mots en commun : « autonomes », « énergie », « solaire »"]
    assert lamp.likeness == 5 and lamp.score == 9 and lamp.origin_name == "peer-city"
    assert all(r.match == "same" and r.why == [] for r in found.same)


def test_similar_ones_rank_by_innovation_then_territory_likeness_and_need_no_territory(ctx):
    _home()
    innovation = make_innovation(name="Kiosque d'eau solaire", tagline="Eau potable pompée par panneaux solaires",
                                 themes=["water_sanitation", "energy_climate"])
    close = make_foreign("innovations", name="Kiosques d'eau potable solaires", tagline="Eau potable et solaire",
                         themes=["water_sanitation", "energy_climate"])
    loose = make_foreign("innovations", name="Forage communautaire", tagline="Un forage géré par le quartier",
                         themes=["water_sanitation"])
    words_only = make_foreign("innovations", name="Fontaine potable solaire", tagline="Panneaux solaires en ville",
                              themes=["economy_jobs"])
    two_words = make_foreign("innovations", name="Séchoir solaire à poisson", tagline="Panneaux et claies",
                             themes=["economy_jobs"])
    alike_town = make_foreign("territories", name="Mbour", level="commune", country_code="SN", population=55_000,
                              degurba_l1=2, features=["littoral"])
    make_foreign("experiments", title="Kiosques sans territoire", innovation=close.uid, status="completed")
    _peer_experiment(loose, alike_town, "Forage de Mbour", "2020-01-01")
    _peer_experiment(words_only, alike_town, "Fontaine de Mbour", "2021-01-01")
    _peer_experiment(two_words, alike_town, "Séchoir de Mbour", "2021-01-01")

    found = peers.for_innovation(innovation)
    assert found.same == []
    titles = [r.experiment.title for r in found.similar]
    # The forage shares one theme of two and no word, the séchoir two words: not similar. The kiosque's
    # innovation is closest (both themes 4 + three words 3), so it comes first although its city did not
    # describe where it took place; the fontaine (three words) in a town like ours comes next.
    assert titles == ["Kiosques sans territoire", "Fontaine de Mbour"]
    kiosque, fontaine = found.similar
    assert fontaine.why == ["Mots en commun : « panneaux », « potable », « solaire »"] and fontaine.likeness == 3
    assert kiosque.experiment.territory is None and kiosque.reasons == [] and kiosque.score == 0
    assert kiosque.why[0].startswith("Mêmes thématiques : « ")
    assert kiosque.likeness == 7 and fontaine.score == 9


def test_similar_innovations_need_a_peers_experiment_and_stay_bounded_in_queries(ctx):
    innovation = make_innovation()
    make_foreign("innovations", name="Lampadaires solaires sans essai", themes=["energy_climate"])
    make_innovation(name="Éclairage solaire de la mairie")  # ours, never tried by a peer
    assert peers.similar_innovations(innovation) == {}
    assert not peers.for_innovation(innovation)
    assert peers.significant_words("Les Lampadaires solaires, pour la ville") == {"lampadaire": "lampadaires",
                                                                                 "solaire": "solaires"}


def test_similar_innovations_cost_the_same_queries_however_many_peers_tried_them(ctx):
    innovation = make_innovation()
    place = make_foreign("territories", name="Mbour", level="commune", country_code="SN")

    def add_similar(n: int) -> None:
        lamps = make_foreign("innovations", name=f"Lampadaires solaires {n}", tagline="Énergie solaire autonome",
                             themes=["energy_climate"])
        exp = _peer_experiment(lamps, place, f"Essai {n}", "2021-01-01")
        make_foreign("lessons", title=f"Retour {n}", experiment=exp.uid)

    def count_queries() -> int:
        seen: list[str] = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            found = peers.for_innovation(innovation)
            for r in found.similar:
                assert r.experiment.territory and r.experiment.innovation and r.lessons
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(seen)

    add_similar(1)
    db.session.flush()
    few = count_queries()
    for n in range(2, 9):
        add_similar(n)
    db.session.flush()
    db.session.expire_all()
    assert len(peers.for_innovation(innovation).similar) == 8
    assert count_queries() <= few + 1


def test_what_peers_tried_follows_imports_and_their_undo(ctx):
    """The set of innovations peers tried is kept between pages: an import, or the undo that takes a
    peer's experiment away, is seen at once."""
    innovation = make_innovation(name="Lampadaires solaires", themes=["energy_climate"])
    place = make_foreign("territories", name="Mbour", level="commune", country_code="SN")
    lamps = make_foreign("innovations", name="Lampadaires solaires autonomes", themes=["energy_climate"])
    assert peers.similar_innovations(innovation) == {}
    experiment = _peer_experiment(lamps, place, "Essai à Mbour", "2021-01-01")
    db.session.flush()
    assert set(peers.similar_innovations(innovation)) == {lamps.id}
    assert [r.experiment.uid for r in peers.who_tried(theme_code="energy_climate")] == [experiment.uid]
    # an undo marks the peer's experiment deleted and the import undone, in one transaction
    batch = ImportBatch(kind="bundle", origin_instance="peer-city", username="import")
    db.session.add(batch)
    db.session.flush()
    experiment.deleted = True
    batch.status, batch.undone_at = "undone", datetime(2026, 12, 7, 12, 0)
    db.session.flush()
    assert peers.similar_innovations(innovation) == {}
    assert peers.who_tried(theme_code="energy_climate") == []


def test_an_edit_of_our_innovation_that_a_peer_tried_changes_what_it_is_like_at_once(ctx):
    """What peers tried is kept in memory between pages; editing one of our innovations that a peer
    tried (its name, its themes), deleting it or restoring it is seen on the next page, through the
    history lines the edits write."""
    from piu_app.registry import RECORD_TYPES
    from piu_app.services import records

    ours = make_innovation(name="Lampadaires solaires", tagline="Pour les rues", themes=["energy_climate"])
    tried = make_innovation(name="Compostage partagé", tagline="Des bacs", themes=["waste_circular"])
    place = make_foreign("territories", name="Mbour", level="commune", country_code="SN")
    _peer_experiment(tried, place, "Essai à Mbour", "2021-01-01")
    db.session.commit()
    assert peers.similar_innovations(ours) == {}
    published = peers._catalogue
    assert tried.id in published.tried  # kept for the next pages
    records.update(RECORD_TYPES["innovations"], tried, {"name": "Lampadaires solaires de quartier",
                                                        "themes": ["energy_climate"]}, username="awa")
    db.session.commit()
    likeness, why = peers.similar_innovations(ours)[tried.id]
    assert likeness == 2 + 2 and why == ["Même thématique : « Énergie, climat, bâtiments, éclairage »",
                                         "Mots en commun : « lampadaires », « solaires »"]
    assert peers._catalogue.peered is published.peered  # refreshed, not read whole again
    records.delete(RECORD_TYPES["innovations"], tried, username="awa")
    db.session.commit()
    assert peers.similar_innovations(ours) == {}
    records.restore(RECORD_TYPES["innovations"], tried, username="awa")
    db.session.commit()
    assert set(peers.similar_innovations(ours)) == {tried.id}


def test_an_edit_committed_after_a_later_line_was_seen_is_still_found(ctx):
    """On PostgreSQL an edit may commit after a later history line was seen (ids come from a sequence):
    the catalogue reads again the lines just before its mark, and looks again after REVISIT_SECONDS
    even when the last line has not moved."""
    from piu_app.registry import RECORD_TYPES
    from piu_app.services import records

    ours = make_innovation(name="Lampadaires solaires", tagline="Pour les rues", themes=["energy_climate"])
    tried = make_innovation(name="Compostage partagé", tagline="Des bacs", themes=["waste_circular"])
    _peer_experiment(tried, make_foreign("territories", name="Mbour", level="commune", country_code="SN"), "Essai à Mbour", "2021-01-01")
    db.session.commit()
    assert peers.similar_innovations(ours) == {}
    stale = peers._catalogue
    records.update(RECORD_TYPES["innovations"], tried, {"name": "Lampadaires solaires de quartier",
                                                        "themes": ["energy_climate"]}, username="awa")
    db.session.commit()
    # as if the catalogue had seen the edit's line number before the edit was committed
    last = db.session.scalar(db.select(db.func.max(ChangeLog.id)))
    peers._catalogue = dataclasses.replace(stale, log_mark=last)
    assert peers.similar_innovations(ours) == {}  # looked at a moment ago: trusted for REVISIT_SECONDS
    peers._catalogue = dataclasses.replace(stale, log_mark=last, checked_at=0.0)
    assert set(peers.similar_innovations(ours)) == {tried.id}


def test_a_transaction_that_wrote_keeps_what_it_read_for_itself(ctx):
    """What a transaction that has written reads may be rolled back: it is never kept for other pages."""
    ours = make_innovation(name="Lampadaires solaires", tagline="Pour les rues", themes=["energy_climate"])
    db.session.commit()
    assert peers.similar_innovations(ours) == {}
    before = peers._catalogue
    lamps = make_foreign("innovations", name="Lampadaires solaires autonomes", themes=["energy_climate"])
    _peer_experiment(lamps, make_foreign("territories", name="Mbour", level="commune", country_code="SN"), "Essai à Mbour", "2021-01-01")
    db.session.flush()
    assert set(peers.similar_innovations(ours)) == {lamps.id}  # this transaction sees its own write …
    assert peers._catalogue is before  # … and keeps it to itself
    db.session.rollback()
    assert peers.similar_innovations(ours) == {}
    peers.forget()  # a restored backup
    assert peers._catalogue.state == ()


def test_our_own_new_experiment_does_not_make_pages_read_what_peers_tried_again(ctx):
    """Reading the catalogue of what peers tried costs 340 ms at 100 000 innovations: recording one of
    our own experiments (an officer's daily work) must not throw it away; a peer's experiment does."""
    ours = make_innovation(name="Lampadaires solaires", tagline="Rues", themes=["energy_climate"])
    place = make_foreign("territories", name="Mbour", level="commune", country_code="SN")
    lamps = make_foreign("innovations", name="Lampadaires solaires autonomes", themes=["energy_climate"])
    _peer_experiment(lamps, place, "Essai à Mbour", "2021-01-01")
    db.session.commit()
    assert set(peers.similar_innovations(ours)) == {lamps.id}
    read = peers._catalogue.tried
    make_experiment(ours, title="Notre essai au marché")
    db.session.commit()
    assert set(peers.similar_innovations(ours)) == {lamps.id}
    assert peers._catalogue.tried is read  # kept: nothing read again
    other = make_foreign("innovations", name="Lampadaires à détecteur", themes=["energy_climate"])
    _peer_experiment(other, place, "Essai à Joal", "2022-01-01")
    db.session.commit()
    assert set(peers.similar_innovations(ours)) == {lamps.id, other.id}
