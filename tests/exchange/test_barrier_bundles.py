"""Barriers, their themes and the lessons citing them travel in bundles like every record of the register."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from frictionless import Package

from piu_app.exchange import bundle_format as bf
from piu_app.extensions import db
from piu_app.models import Barrier, Lesson
from piu_app.registry import BARRIERS, LESSONS
from piu_app.services import barriers as barrier_service
from piu_app.services import exchange, records

from ..factories import make
from .cities import all_bytes, data_rows, export, import_, inside, make_city


@pytest.fixture
def cities(register_template: Path, tmp_path: Path):
    def make_(code: str, **kw):
        return make_city(register_template, tmp_path, code, **kw)
    return make_


def _table(bundle: Path, name: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(bundle) as zf:
        return list(csv.DictReader(io.TextIOWrapper(zf.open(f"data/{name}.csv"), encoding="utf-8", newline="")))


def _fill(a) -> None:
    with inside(a):
        shared = barrier_service.create("Délais de paiement trop longs", actor_group="buyer_carrier_relation",
                                        nature="funding_business_model", levers="Avance de 30 %",
                                        themes=["economy_jobs"], username="t")
        public = barrier_service.create("Foncier introuvable", actor_group="territory", visibility="public",
                                        username="t")
        secret = barrier_service.create("Élu hostile au projet", actor_group="buyers", visibility="private",
                                        username="t")
        lesson = make("lessons", title="Éclairage : payer à temps", visibility="network")
        for b in (shared, public, secret):
            records.add_citation(LESSONS, lesson, "barriers", target_uid=b.uid, username="t")
        private_lesson = make("lessons", title="Leçon interne", visibility="private")
        records.add_citation(LESSONS, private_lesson, "barriers", target_uid=shared.uid, username="t")


def test_barriers_and_citations_leave_with_their_sharing_level(cities, tmp_path):
    a = cities("ville-a")
    _fill(a)
    bundle = export(a, tmp_path / "a.zip")
    content = all_bytes(bundle)
    assert b"Elu hostile" not in content and "Élu hostile".encode() not in content  # private barrier
    assert "Leçon interne".encode() not in content
    barriers = {row["label"]: row for row in _table(bundle, "barriers")}
    assert set(barriers) == {"Délais de paiement trop longs", "Foncier introuvable"}
    row = barriers["Délais de paiement trop longs"]
    assert (row["actor_group"], row["nature"], row["levers"]) == ("buyer_carrier_relation", "funding_business_model",
                                                                  "Avance de 30 %")
    assert {r["theme_code"] for r in _table(bundle, "barrier_themes")} == {"economy_jobs"}
    cited = _table(bundle, "lesson_barriers")
    assert {r["barrier_uid"] for r in cited} == {row["uid"], barriers["Foncier introuvable"]["uid"]}  # not the private one
    assert len(cited) == 2

    public = export(a, tmp_path / "a-public.zip", level="public")
    assert {r["label"] for r in _table(public, "barriers")} == {"Foncier introuvable"}
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(tmp_path / "unzipped")
    report = Package(str(tmp_path / "unzipped" / "datapackage.json")).validate()
    assert report.valid, report.flatten(["resourcePath", "rowNumber", "fieldName", "type", "note"])[:10]


def test_the_barrier_tables_declare_their_schema():
    barriers = bf.TABLES["barriers"]
    assert barriers.column("label").required and barriers.column("label").max_length == 200
    assert barriers.column("actor_group").vocab == "barrier_actor_group"
    assert barriers.column("nature").vocab == "barrier_nature"
    assert bf.TABLE_ORDER.index("barriers") < bf.TABLE_ORDER.index("lessons")  # cited before citing
    [cites] = [c for c in bf.TABLES["lessons"].children if c.name == "lesson_barriers"]
    assert [c.name for c in cites.columns] == ["lesson_uid", "barrier_uid"]
    assert cites.columns[1].ref == "barriers" and cites.columns[1].required


def test_import_into_another_city_then_reimport_unchanged_then_update_and_undo(cities, tmp_path):
    a, b = cities("ville-a", name="Ville A"), cities("ville-b")
    _fill(a)
    bundle = export(a, tmp_path / "a.zip")
    totals, batch = import_(b, bundle)
    assert totals["conflict"] == 0 and totals["skipped"] == 0 and batch
    assert import_(b, bundle) == ({"created": 0, "updated": 0, "unchanged": totals["created"], "skipped": 0,
                                   "conflict": 0}, None)
    with inside(b):
        lesson = db.session.scalars(db.select(Lesson).filter_by(title="Éclairage : payer à temps")).one()
        assert sorted(x.label for x in lesson.barriers) == ["Délais de paiement trop longs", "Foncier introuvable"]
        paiement = db.session.scalars(db.select(Barrier).filter_by(label="Délais de paiement trop longs")).one()
        assert paiement.origin_instance == "ville-a" and records.is_foreign(paiement)
        assert [t.code for t in paiement.themes] == ["economy_jobs"]
        [cited] = barrier_service.most_cited()[:1]
        assert cited.city_names == ["Ville A"] and cited.citations.lessons == 1
        with pytest.raises(Exception, match="ville-a"):
            records.add_citation(LESSONS, lesson, "barriers", target_uid=paiement.uid, username="t")

    with inside(a):  # A changes a barrier and stops citing another
        paiement = db.session.scalars(db.select(Barrier).filter_by(label="Délais de paiement trop longs")).one()
        records.update(BARRIERS, paiement, {"levers": "Avance de 30 % et paiement sous 30 jours"}, username="t")
        lesson = db.session.scalars(db.select(Lesson).filter_by(title="Éclairage : payer à temps")).one()
        foncier = db.session.scalars(db.select(Barrier).filter_by(label="Foncier introuvable")).one()
        records.remove_citation(LESSONS, lesson, "barriers", target_uid=foncier.uid, username="t")
    totals, second = import_(b, export(a, tmp_path / "a2.zip"))
    assert totals["updated"] == 2 and totals["conflict"] == 0
    with inside(b):
        lesson = db.session.scalars(db.select(Lesson).filter_by(title="Éclairage : payer à temps")).one()
        assert [x.label for x in lesson.barriers] == ["Délais de paiement trop longs"]
        words = records.history_in_words(LESSONS, lesson, {})
        row = next(r for r in words[0].rows if r.label == "Freins rencontrés")
        assert "Foncier introuvable" in row.before and "Foncier introuvable" not in row.after  # titles, not uids
        exchange.undo(second, username="t")
    with inside(b):
        lesson = db.session.scalars(db.select(Lesson).filter_by(title="Éclairage : payer à temps")).one()
        assert sorted(x.label for x in lesson.barriers) == ["Délais de paiement trop longs", "Foncier introuvable"]
        paiement = db.session.scalars(db.select(Barrier).filter_by(label="Délais de paiement trop longs")).one()
        assert paiement.levers == "Avance de 30 %"


def test_a_relayed_bundle_carries_the_citations_onwards(cities, tmp_path):
    a, b, c = cities("ville-a"), cities("ville-b"), cities("ville-c")
    _fill(a)
    bundle = export(a, tmp_path / "a.zip")
    import_(b, bundle)
    relayed = data_rows(export(b, tmp_path / "b.zip"))
    for table in ("data/barriers.csv", "data/barrier_themes.csv", "data/lesson_barriers.csv"):
        assert data_rows(bundle)[table] <= relayed[table], table
    import_(c, tmp_path / "b.zip")
    with inside(c):
        assert {r.barrier.label for r in barrier_service.most_cited()} == {"Délais de paiement trop longs",
                                                                           "Foncier introuvable"}
