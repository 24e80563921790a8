"""Bundles between cities: what leaves, what comes in, what is never overwritten, and the undo."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from frictionless import Package

from piu_app.exchange import bundle_format as bf
from piu_app.extensions import db
from piu_app.models import ImportConflict, Innovation, Person
from piu_app.registry import RECORD_TYPES
from piu_app.services import ConflictError, exchange, records

from ..factories import make, make_experiment, make_innovation, make_organisation, make_territory
from .cities import all_bytes, data_rows, export, import_, inside, make_city

INNOVATIONS = RECORD_TYPES["innovations"]


@pytest.fixture
def cities(register_template: Path, tmp_path: Path):
    def make(code: str, **kw):
        return make_city(register_template, tmp_path, code, **kw)
    return make


def _fill_a(a):
    """City A: something of every sharing level, a person with and one without consent, a formula."""
    with inside(a):
        territory = make_territory(name="Ville A", visibility="public", features=["littoral"])
        org = make_organisation(name="Lumisol", visibility="network", territory=territory.uid)
        secret_org = make_organisation(name="Fournisseur confidentiel", visibility="private")
        innovation = make_innovation(name="Éclairage solaire", visibility="public")
        records.add_link(INNOVATIONS, innovation, "carriers", target_uid=org.uid, role="carrier", username="t")
        records.add_link(INNOVATIONS, innovation, "carriers", target_uid=secret_org.uid, role="distributor", username="t")
        make_innovation(name="Projet interne", visibility="private")
        make_innovation(name="=HYPERLINK(\"http://evil\")", visibility="network")
        make_innovation(name="Brouillon partagé", visibility="network", draft=True)
        make_experiment(innovation, title="Pilote du port", territory=territory.uid, buyer=secret_org.uid,
                        visibility="network")
        make("persons", family_name="Diallo", email="awa@ville-a.sn", phone="+221 77", contact_consent=True,
             visibility="public", organisation=org.uid)
        make("persons", family_name="Ndiaye", email="canary@secret.invalid", contact_consent=False,
             visibility="public")
        make("persons", family_name="Sow", email="sow@ville-a.sn", contact_consent=True, visibility="network")


def test_a_network_bundle_carries_what_is_shared_and_nothing_else(cities, tmp_path):
    a = cities("ville-a")
    _fill_a(a)
    bundle = export(a, tmp_path / "a.zip")
    content = all_bytes(bundle)
    assert b"Projet interne" not in content and b"Fournisseur confidentiel" not in content  # private
    assert b"Brouillon" not in content  # drafts stay home
    assert b"canary@secret.invalid" not in content and b"sow@ville-a.sn" not in content  # no consent / not public
    assert b"awa@ville-a.sn" in content  # public and consented
    rows = data_rows(bundle)
    names = {r[10] for r in rows["data/innovations.csv"]}
    # format 1.1: data as it was entered, no formula escape (the bundle's README says how to open it safely)
    assert names == {"Éclairage solaire", "=HYPERLINK(\"http://evil\")"}
    experiment = next(iter(rows["data/experiments.csv"]))
    assert experiment[13] == ""  # buyer_uid: the private buyer is not revealed, not even by its uid
    assert len(rows["data/innovation_organisations.csv"]) == 1  # the link to the private partner stays home

    public = export(a, tmp_path / "a-public.zip", level="public")
    public_names = {r[10] for r in data_rows(public)["data/innovations.csv"]}
    assert public_names == {"Éclairage solaire"}
    with zipfile.ZipFile(public) as zf:
        assert b"etalab-2.0" in zf.read("datapackage.json")


@pytest.mark.parametrize("level", ["network", "public"])
def test_frictionless_validates_every_bundle_the_app_writes(cities, tmp_path, level):
    a = cities("ville-a")
    _fill_a(a)
    bundle = export(a, tmp_path / "a.zip", level=level)
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(folder)
    report = Package(str(folder / "datapackage.json")).validate()
    assert report.valid, report.flatten(["resourcePath", "rowNumber", "fieldName", "type", "note"])[:10]


def test_import_creates_read_only_foreign_records_and_a_reimport_changes_nothing(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    _fill_a(a)
    bundle = export(a, tmp_path / "a.zip")
    totals, batch = import_(b, bundle)
    assert totals["created"] > 0 and totals["conflict"] == 0 and batch
    assert import_(b, bundle) == ({"created": 0, "updated": 0, "unchanged": totals["created"], "skipped": 0,
                                   "conflict": 0}, None)
    with inside(b):
        innovation = db.session.scalars(db.select(Innovation).filter_by(name="Éclairage solaire")).one()
        assert innovation.origin_instance == "ville-a" and records.is_foreign(innovation)
        assert [t.code for t in innovation.themes] == ["energy_climate"]
        assert innovation.name == "Éclairage solaire"
        with pytest.raises(Exception, match="ville-a"):
            records.update(INNOVATIONS, innovation, {"name": "pirate"}, username="t")
        diallo = db.session.scalars(db.select(Person).filter_by(family_name="Diallo")).one()
        assert diallo.email == "awa@ville-a.sn"
    # B shares A's records onwards unchanged
    relayed = data_rows(export(b, tmp_path / "b.zip"))
    original = data_rows(bundle)
    for table, rows in original.items():
        assert rows <= relayed[table], table


def test_a_reimport_knows_unchanged_records_by_fingerprint_and_compares_the_others_in_full(cities, tmp_path,
                                                                                          monkeypatch):
    a, b = cities("ville-a"), cities("ville-b")
    _fill_a(a)
    bundle = export(a, tmp_path / "a.zip")
    totals, _batch = import_(b, bundle)
    unchanged = {"created": 0, "updated": 0, "unchanged": totals["created"], "skipped": 0, "conflict": 0}
    read_back: list[int] = []  # the local records a re-import reads to compare them in full
    local_rows = bf.local_rows
    monkeypatch.setattr(bf, "local_rows", lambda conn, rtable, maps, *, ids=None, **kw: (
        read_back.extend(ids or []), local_rows(conn, rtable, maps, ids=ids, **kw))[1])
    assert import_(b, bundle) == (unchanged, None)
    assert read_back == []  # every fingerprint matched
    with inside(b):  # as a release without fingerprints left them
        db.session.execute(db.update(Innovation).values(content_digest=""))
        db.session.commit()
        innovations = sorted(db.session.scalars(db.select(Innovation.id)))
    assert import_(b, bundle) == (unchanged, None)
    assert sorted(read_back) == innovations and len(innovations) == 2  # A's two shared ones, compared in full
    with inside(b):  # changed behind the application's back, same version: A's bundle puts it right
        innovation = db.session.scalars(db.select(Innovation).filter_by(name="Éclairage solaire")).one()
        innovation.tagline = "Réécrit ici"
        db.session.commit()
        assert innovation.content_digest == ""
    assert import_(b, bundle)[0] == {**unchanged, "updated": 1, "unchanged": unchanged["unchanged"] - 1}
    with inside(b):
        innovation = db.session.scalars(db.select(Innovation).filter_by(name="Éclairage solaire")).one()
        assert innovation.tagline != "Réécrit ici" and innovation.content_digest
    assert import_(b, bundle) == (unchanged, None)


def test_a_city_adds_its_own_records_on_top_of_a_peers(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    _fill_a(a)
    import_(b, export(a, tmp_path / "a.zip"))
    with inside(b):
        innovation = db.session.scalars(db.select(Innovation).filter_by(name="Éclairage solaire")).one()
        make("reviews", innovation=innovation.uid, reviewer_type="peer_city", overall_comment="Très utile",
             visibility="network")
        make_experiment(innovation, title="Essai à Ville B", visibility="network")
    back = export(b, tmp_path / "b.zip")
    totals, _batch = import_(a, back)
    assert totals["created"] == 2  # A receives B's review and experiment of its innovation
    assert totals["skipped"] >= 5  # and never takes its own records back from B


def test_newer_versions_replace_older_tombstones_propagate_and_undo_restores(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    _fill_a(a)
    import_(b, export(a, tmp_path / "v1.zip"))
    with inside(a):
        innovation = db.session.scalars(db.select(Innovation).filter_by(name="Éclairage solaire")).one()
        records.update(INNOVATIONS, innovation, {"tagline": "Version 2"}, username="t")
        experiment = db.session.scalars(db.select(RECORD_TYPES["experiments"].model)).one()
        records.delete(RECORD_TYPES["experiments"], experiment, username="t")
        make_innovation(name="Nouveauté", visibility="network")
    totals, batch = import_(b, export(a, tmp_path / "v2.zip"))
    assert (totals["created"], totals["updated"]) == (1, 2)
    with inside(b):
        innovation = db.session.scalars(db.select(Innovation).filter_by(name="Éclairage solaire")).one()
        assert innovation.tagline == "Version 2"
        experiment = db.session.scalars(db.select(RECORD_TYPES["experiments"].model)).one()
        assert experiment.deleted
    # an older bundle afterwards changes nothing
    totals, _ = import_(b, tmp_path / "v1.zip")
    assert totals["created"] == totals["updated"] == 0 and totals["skipped"] > 0
    with inside(b):
        from piu_app.services import exchange
        exchange.undo(batch, username="t")
    with inside(b):
        innovation = db.session.scalars(db.select(Innovation).filter_by(name="Éclairage solaire")).one()
        assert innovation.tagline != "Version 2"
        assert not db.session.scalars(db.select(RECORD_TYPES["experiments"].model)).one().deleted
        assert db.session.scalars(db.select(Innovation).filter_by(name="Nouveauté")).first() is None
        from piu_app.services import search
        assert not search.search("Nouveauté")[0]


def test_undo_is_refused_while_own_records_rely_on_what_the_import_brought(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    _fill_a(a)
    _totals, batch = import_(b, export(a, tmp_path / "a.zip"))
    with inside(b):
        innovation = db.session.scalars(db.select(Innovation).filter_by(name="Éclairage solaire")).one()
        make("reviews", innovation=innovation.uid, reviewer_type="peer_city")
    with inside(b):
        from piu_app.services import exchange
        with pytest.raises(ConflictError, match="s'appuient"):
            exchange.undo(batch, username="t")


def test_own_records_are_never_overwritten_and_relayed_disagreements_are_kept_as_conflicts(cities, tmp_path):
    a, b, c = cities("ville-a"), cities("ville-b"), cities("ville-c")
    _fill_a(a)
    bundle = export(a, tmp_path / "a.zip")
    import_(b, bundle)
    # B's copy is tampered with (same version, other content) and relayed to C after C got A's own
    with inside(b):
        innovation = db.session.scalars(db.select(Innovation).filter_by(name="Éclairage solaire")).one()
        innovation.tagline = "Réécrit par B"
    import_(c, bundle)
    totals, _ = import_(c, export(b, tmp_path / "b.zip"))
    # A's key is pinned at C and A's signed manifest proves B's copy is not A's: skipped and reported
    # (before signed bundles it was kept as a conflict; see test_signing.py for the relays)
    assert totals["skipped"] == 1 and totals["conflict"] == 0
    with inside(c):
        kept = db.session.scalars(db.select(Innovation).filter_by(name="Éclairage solaire")).one()
        assert kept.tagline != "Réécrit par B"
        assert db.session.scalars(db.select(ImportConflict)).all() == []
        plan = exchange.preview(tmp_path / "b.zip")
        plan.bundle.close()
        assert [(d.uid, d.reason) for d in plan.decisions["innovations"].values() if d.action == "skipped"] \
            == [(kept.uid, "relay_differs")]
    assert import_(c, tmp_path / "b.zip")[1] is None  # nothing new the second time
    # and A never takes its own record from B's bundle
    totals, _ = import_(a, tmp_path / "b.zip")
    with inside(a):
        assert db.session.scalars(db.select(Innovation).filter_by(name="Éclairage solaire")).one().tagline \
            != "Réécrit par B"


def test_a_record_whose_required_link_stays_home_stays_home_too(register_template, tmp_path):
    """An experiment of a private innovation, a funding line of a private experiment: sent with
    their required link blanked, they would make every peer refuse the city's whole bundle."""
    from ..factories import make_experiment, make_innovation

    a = make_city(register_template, tmp_path, "ville-a")
    b = make_city(register_template, tmp_path, "ville-b")
    with inside(a):
        private = make_innovation(name="Projet interne", visibility="private")
        shared = make_innovation(name="Projet partagé", visibility="network")
        hidden = make_experiment(private, title="Essai d'un projet interne", visibility="network").uid
        seen = make_experiment(shared, title="Essai partagé", visibility="network").uid
        aid = make("funding_aids", name="Fonds vert", aid_type="grant", visibility="network")
        funding = make("experiment_fundings", experiment=hidden, funding_aid=aid.uid, status="requested",
                       visibility="network").uid
    rows = data_rows(export(a, tmp_path / "a.zip"))
    experiments = {r[0] for r in rows["data/experiments.csv"]}
    assert seen in experiments and hidden not in experiments
    assert funding not in {r[0] for r in rows["data/experiment_fundings.csv"]}
    totals, _batch = import_(b, tmp_path / "a.zip")  # the peer takes the bundle
    assert totals["created"] >= 3
