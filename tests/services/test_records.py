"""The life of a record: rules, versions, history, tombstones, links, ownership."""

from __future__ import annotations

import pytest

from piu_app.extensions import db
from piu_app.models import ChangeLog, Innovation
from piu_app.registry import EXPERIMENTS, INNOVATIONS, LESSONS, ORGANISATIONS, RECORD_TYPES, REVIEWS
from piu_app.services import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError, records
from tests.factories import make, make_experiment, make_innovation, make_organisation, make_territory


def test_create_sets_identity_origin_and_history(ctx):
    innovation = make_innovation()
    assert len(innovation.uid) == 36 and innovation.uid[14] == "7"  # UUID v7
    assert innovation.origin_instance == "test-city"
    assert innovation.version == 1 and not innovation.deleted
    assert [t.code for t in innovation.themes] == ["energy_climate"]
    log = db.session.scalars(db.select(ChangeLog).filter_by(record_uid=innovation.uid)).all()
    assert [e.action for e in log] == ["create"]
    assert log[0].changes["name"] == ["", "Éclairage public solaire intelligent"]


def test_required_fields_and_vocabularies_are_enforced(ctx):
    with pytest.raises(InvalidInputError) as err:
        records.create(INNOVATIONS, {"name": "", "deployment_stage": "not-a-stage"}, username="t")
    assert set(err.value.field_errors) == {"name", "deployment_stage"}
    with pytest.raises(InvalidInputError) as err:
        records.create(INNOVATIONS, {"name": "X", "trl": 12}, username="t")
    assert "trl" in err.value.field_errors


def test_ref_must_point_to_a_live_record(ctx):
    innovation = make_innovation()
    records.delete(INNOVATIONS, innovation, username="t")
    with pytest.raises(InvalidInputError) as err:
        make_experiment(innovation)
    assert "innovation" in err.value.field_errors


def test_update_bumps_version_logs_the_diff_and_detects_stale_edits(ctx):
    innovation = make_innovation()
    records.update(INNOVATIONS, innovation, {"tagline": "Nouvelle accroche", "trl": 7}, username="ed",
                   expected_version=1)
    assert innovation.version == 2
    entry = records.history(innovation)[0]
    assert entry.action == "update" and entry.username == "ed"
    assert entry.changes["tagline"][1] == "Nouvelle accroche" and entry.changes["trl"] == ["", "7"]
    with pytest.raises(ConflictError):
        records.update(INNOVATIONS, innovation, {"tagline": "autre"}, username="ed", expected_version=1)


def test_an_update_that_changes_nothing_keeps_the_version(ctx):
    innovation = make_innovation()
    records.update(INNOVATIONS, innovation, {"name": innovation.name}, username="ed")
    assert innovation.version == 1


def test_delete_is_a_tombstone_that_can_be_undone(ctx):
    innovation = make_innovation()
    records.delete(INNOVATIONS, innovation, username="t")
    assert innovation.deleted and innovation.version == 2
    assert records.list_records(INNOVATIONS).total == 0
    assert records.list_records(INNOVATIONS, deleted=True).total == 1
    with pytest.raises(NotFoundError):
        records.get(INNOVATIONS, innovation.uid, include_deleted=False)
    records.restore(INNOVATIONS, innovation, username="t")
    assert not innovation.deleted and records.list_records(INNOVATIONS).total == 1
    assert [e.action for e in records.history(innovation)] == ["restore", "delete", "create"]


def test_foreign_records_are_read_only(ctx):
    foreign = make_innovation(name="Innovation d'ailleurs")
    foreign.origin_instance = "autre-ville"
    with pytest.raises(PermissionDeniedError):
        records.update(INNOVATIONS, foreign, {"tagline": "x"}, username="t")
    with pytest.raises(PermissionDeniedError):
        records.delete(INNOVATIONS, foreign, username="t")
    # …but the city can add its own records on top of it
    experiment = make_experiment(foreign)
    assert experiment.origin_instance == "test-city"


def test_links_with_roles(ctx):
    innovation = make_innovation()
    lumisol = make_organisation()
    records.add_link(INNOVATIONS, innovation, "carriers", target_uid=lumisol.uid, role="carrier", username="t")
    records.add_link(INNOVATIONS, innovation, "carriers", target_uid=lumisol.uid, role="carrier", username="t")
    assert [(link.organisation.name, link.role) for link in innovation.carrier_links] == [("Lumisol", "carrier")]
    reverse = records.reverse_links(ORGANISATIONS, lumisol)
    assert [(owner.key, [o.uid for o, _ in pairs]) for owner, _, pairs in reverse] == [("innovations", [innovation.uid])]
    with pytest.raises(InvalidInputError):
        records.add_link(INNOVATIONS, innovation, "carriers", target_uid=lumisol.uid, role="boss", username="t")
    records.remove_link(INNOVATIONS, innovation, "carriers", innovation.carrier_links[0].id, username="t")
    assert innovation.carrier_links == []


def test_detail_links_innovation_to_experiments_and_their_lessons(ctx):
    innovation = make_innovation()
    experiment = make_experiment(innovation, territory=make_territory().uid)
    lesson = make("lessons", title="Ce que nous avons appris", experiment=experiment.uid, what_worked="La télégestion")
    groups = {b.source.key: rows for b, rows in records.backrefs(INNOVATIONS, innovation)}
    assert groups["experiments"] == [experiment]
    lessons = {b.source.key: rows for b, rows in records.backrefs(EXPERIMENTS, experiment)}["lessons"]
    assert lessons == [lesson]
    assert records.experiments_without_lessons() == []
    records.delete(LESSONS, lesson, username="t")
    assert records.experiments_without_lessons() == [experiment]


def test_review_scores_and_verification(ctx):
    innovation = make_innovation()
    city = make_organisation(name="Ville de Test", org_type="commune", is_startup=False)
    experiment = make_experiment(innovation, buyer=city.uid)
    review = make("reviews", innovation=innovation.uid, experiment=experiment.uid, reviewer_org=city.uid,
                  reviewer_type="peer_city", scores={"benefit": "5", "total_cost": "3", "maturity": ""})
    assert {s.criterion: s.score for s in review.scores} == {"benefit": 5, "total_cost": 3}
    assert review.verified  # the reviewing city bought the experiment it cites
    with pytest.raises(InvalidInputError):
        records.update(REVIEWS, review, {"scores": {"benefit": "9"}}, username="t")
    other = make("reviews", innovation=innovation.uid, reviewer_org=city.uid, reviewer_type="expert")
    assert not other.verified


def test_list_filters_and_pagination(ctx):
    for i in range(30):
        make_innovation(name=f"Innovation {i:02d}", deployment_stage="pilot" if i % 2 else "concept",
                        themes=["mobility"] if i < 10 else ["energy_climate"], visibility="public" if i < 5 else "network")
    assert records.list_records(INNOVATIONS, page_size=25).total == 30
    assert len(records.list_records(INNOVATIONS, page=2, page_size=25).items) == 5
    assert records.list_records(INNOVATIONS, {"nonsense": "mobility"}).total == 30  # unknown filters are ignored
    assert records.list_records(INNOVATIONS, {"themes": "mobility"}).total == 10
    assert records.list_records(INNOVATIONS, {"deployment_stage": "pilot", "themes": "mobility"}).total == 5
    assert records.list_records(INNOVATIONS, {"visibility": "public"}).total == 5


def test_lists_sort_accented_titles_with_their_letter(ctx):
    for name in ("Zones humides", "Éclairage solaire", "eau potable", "Abris"):
        make_innovation(name=name)
    assert [i.name for i in records.list_records(INNOVATIONS).items] == [
        "Abris", "eau potable", "Éclairage solaire", "Zones humides"]


def test_territory_filter_on_innovations_goes_through_experiments(ctx):
    here, there = make_territory(), make_territory(name="Lagune-Bleue", country_code="CI")
    a, b = make_innovation(name="A"), make_innovation(name="B")
    make_experiment(a, territory=here.uid)
    make_experiment(b, title="Autre", territory=there.uid)
    assert [i.name for i in records.list_records(INNOVATIONS, {"territory": here.uid}).items] == ["A"]


def test_persons_are_private_by_default(ctx):
    person = make("persons", given_name="Fatou", family_name="Ndiaye", email="fatou@example.org")
    assert person.visibility == "private" and not person.contact_consent


def test_every_record_type_can_be_created_with_its_required_fields(ctx):
    innovation = make_innovation()
    experiment = make_experiment(innovation)
    aid = make("funding_aids", name="Fonds climat")
    required_values = {
        "territories": {"name": "T", "level": "commune"}, "organisations": {"name": "O", "org_type": "startup"},
        "persons": {"family_name": "Diallo"}, "places": {"name": "Fablab", "place_type": "fablab_makerspace"},
        "needs": {"title": "Besoin", "status": "expressed"}, "lessons": {"title": "REX"},
        "procurements": {"title": "Marché", "route": "innovative_direct_award"},
        "experiment_fundings": {"experiment": experiment.uid, "funding_aid": aid.uid, "status": "obtained"},
        "reviews": {"innovation": innovation.uid, "reviewer_type": "expert"},
        "support_programmes": {"name": "Incubateur", "lever": "third_place"},
    }
    for key, values in required_values.items():
        record = records.create(RECORD_TYPES[key], values, username="t")
        assert records.get(RECORD_TYPES[key], record.uid) is record
    assert db.session.scalar(db.select(db.func.count()).select_from(Innovation)) == 1
