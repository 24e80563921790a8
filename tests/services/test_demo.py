"""The demonstration register loads completely, with a peer city's bundle, and loading it twice adds nothing."""

from __future__ import annotations

from piu_app.extensions import db
from piu_app.models import ImportBatch
from piu_app.registry import INNOVATIONS, RECORD_TYPES
from piu_app.services import demo, peers, records, search
from piu_app.services.instance import instance_code


def test_demo_loads_once(ctx):
    added = demo.load()
    db.session.commit()
    assert added["innovations"] == 30
    assert set(added) == set(RECORD_TYPES)
    assert demo.load() == {}
    assert records.list_records(INNOVATIONS).total == 30 + 3  # and the peer city's own three
    results, _ = search.search("eclairage solaire")
    assert any(r.record_type.title_of(r.record) == "Éclairage public solaire intelligent" for r in results)
    assert records.experiments_without_lessons()  # the dashboard has something to show


def test_demo_has_peers_of_the_same_and_of_similar_innovations(ctx):
    demo.load()
    db.session.commit()
    batch = db.session.scalars(db.select(ImportBatch).filter_by(origin_instance="dune-blanche")).one()
    assert batch.origin_name == "Commune de Dune-Blanche"  # an ordinary bundle import, listed and undoable
    lighting = records.get(INNOVATIONS, demo.demo_uid(instance_code(), "innovations",
                                                      "Éclairage public solaire intelligent"))
    assert lighting.origin_instance == instance_code()  # relayed back by the peer, still ours
    found = peers.for_innovation(lighting)
    assert [r.experiment.title for r in found.same] == ["Éclairage solaire de la corniche de Dune-Blanche"]
    same = found.same[0]
    assert same.origin_name == "Commune de Dune-Blanche" and "Même pays (SN)" in same.reasons
    assert [lesson.title for lesson in same.lessons] and same.reviews
    assert [c.email for c in same.contacts] == ["aminata.faye@dune-blanche.example"]
    similar = [r.experiment.title for r in found.similar]
    assert similar[0] == "Lampadaires à détection au quartier des pêcheurs"
    assert any("lampadaires" in why for why in found.similar[0].why)
    # the fish dryers: a peer's experiment without a territory, found through its innovation
    dryers = records.get(INNOVATIONS, demo.demo_uid(instance_code(), "innovations", "Séchoirs solaires de poisson"))
    first = peers.for_innovation(dryers).similar[0]
    assert first.experiment.title == "Séchoirs solaires du quai de pêche" and first.experiment.territory is None
    assert first.why and first.reasons == []
