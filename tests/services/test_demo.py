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
    assert set(added) == set(RECORD_TYPES) | {"workshops"}
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


def test_demo_has_a_held_workshop_whose_report_reads_like_one(ctx):
    """A first run shows the facilitator's pages and a compte-rendu: a closed barriers board with notes in
    themes and votes, syntheses, participants of whom only the consenting are named, a theme turned into a
    barrier of the catalogue."""
    from piu_app.models import Barrier, Workshop
    from piu_app.services import barriers, workshop_report

    demo.load()
    db.session.commit()
    workshop = db.session.scalars(db.select(Workshop)).one()
    board = workshop.boards[0]
    assert board.state == "closed" and board.revealed and len(board.note_themes) == 3
    report = workshop_report.build(workshop)
    assert {p.name for p in report.named} == {"Fatou Ndiaye", "Ibrahim Traoré", "Mamadou Sarr"}
    assert sum(n for _group, n in report.counted) == 3  # the others, counted by actor group only
    assert "Aminata Sow" not in workshop_report.markdown(report)  # did not consent to be named (nor spoke)
    promoted = [t for t in board.note_themes if t.promoted_kind == "barrier"]
    barrier = db.session.scalars(db.select(Barrier).filter_by(uid=promoted[0].promoted_uid)).one()
    assert barrier.label.startswith("Délais de paiement")
    assert barriers.citation_counts()[barrier.id].themes == 1
