"""Every import can be seen and undone while its records are as it left them; otherwise the undo
names what blocks it (issue 11, item 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from piu_app.exchange import spreadsheets as ss
from piu_app.extensions import db
from piu_app.models import ChangeLog, ImportBatch, Innovation, InnovationOrganisation, Organisation
from piu_app.registry import RECORD_TYPES
from piu_app.services import ConflictError, imports, records
from piu_app.services.imports import ImportBlockedError

from ..exchange.cities import export, import_, inside, make_city
from ..factories import make_innovation, make_organisation

ORGS, INNOVATIONS = RECORD_TYPES["organisations"], RECORD_TYPES["innovations"]


def _sheet(rt, text: str, mapping: dict, *, filename: str = "f.csv", backup: str | None = None) -> ImportBatch:
    table = ss.read_table(text.encode("utf-8"))
    batch = ss.import_rows(rt, table, {"columns": mapping}, username="editor", filename=filename, sha256="x")
    imports.finish(batch, backup=backup)
    db.session.commit()
    return batch


def _orgs(*names: str, filename: str = "orgs.csv") -> ImportBatch:
    return _sheet(ORGS, "Nom;Type\n" + "".join(f"{n};association\n" for n in names), {"Nom": "name", "Type": "org_type"},
                  filename=filename)


def _names(model) -> list[str]:
    return sorted(db.session.scalars(db.select(model.name)))


def test_a_spreadsheet_import_is_undone_and_the_register_is_as_before(ctx):
    make_organisation(name="Déjà là")
    carrier = make_organisation(name="Lumisol")
    db.session.commit()
    log_before = db.session.scalar(db.select(db.func.count()).select_from(ChangeLog))
    batch = _sheet(INNOVATIONS, "Nom;Porteur\nCompost;Lumisol\nVélos;Lumisol\n",
                   {"Nom": "name", "Porteur": "link:carriers"}, backup="/x/piu-import-20260101-000000-000000.sqlite3")
    assert batch.backup_name == "piu-import-20260101-000000-000000.sqlite3"
    assert batch.log_mark == db.session.scalar(db.select(db.func.max(ChangeLog.id)))
    assert _names(Innovation) == ["Compost", "Vélos"]
    assert imports.blockers(batch) == [] and imports.can_undo(batch)
    page = imports.records(batch)
    assert page.total == 2 and {(r.title, r.action, r.present) for r in page.items} == {
        ("Compost", "created", True), ("Vélos", "created", True)}

    imports.undo(batch.uid, username="editor")
    db.session.commit()
    assert _names(Innovation) == [] and _names(Organisation) == ["Déjà là", "Lumisol"]
    assert db.session.scalar(db.select(db.func.count()).select_from(InnovationOrganisation)) == 0
    assert carrier.version == 1  # the existing carrier is untouched
    assert batch.status == "undone" and not imports.can_undo(batch)
    assert db.session.scalar(db.select(db.func.count()).select_from(ChangeLog)) > log_before  # the undo is in the history
    assert [r.present for r in imports.records(batch).items] == [False, False]  # listed, marked as removed
    with pytest.raises(ConflictError, match="déjà été annulé"):
        imports.undo(batch.uid, username="editor")


def test_a_later_import_of_other_records_does_not_block_an_earlier_undo(ctx):
    first = _orgs("Alpha", "Beta", filename="first.csv")
    _orgs("Gamma", filename="second.csv")
    make_innovation(name="Saisie à la main")  # an edit elsewhere in the register
    db.session.commit()
    assert imports.blockers(first) == []
    imports.undo(first.uid, username="editor")
    db.session.commit()
    assert _names(Organisation) == ["Gamma"]


def test_an_edit_since_blocks_the_undo_and_is_named(ctx):
    batch = _orgs("Alpha", "Beta")
    alpha = db.session.scalars(db.select(Organisation).filter_by(name="Alpha")).one()
    records.update(ORGS, alpha, {"name": "Alpha modifiée"}, username="awa")
    db.session.commit()
    found = imports.blockers(batch)
    assert [(b.kind, b.record_uid, b.username, b.action) for b in found] == [("edit", alpha.uid, "awa", "update")]
    assert "Alpha modifiée" in found[0].describe() and "awa" in found[0].describe()
    with pytest.raises(ImportBlockedError) as refused:
        imports.undo(batch.uid, username="editor")
    assert refused.value.blockers[0].record_uid == alpha.uid and "Alpha modifiée" in refused.value.message
    db.session.rollback()
    assert _names(Organisation) == ["Alpha modifiée", "Beta"]  # nothing was removed


def test_records_that_rely_on_an_import_block_it_until_they_are_undone(ctx):
    orgs = _orgs("Lumisol", filename="porteurs.csv")
    innovations = _sheet(INNOVATIONS, "Nom;Porteur\nCompost;Lumisol\n", {"Nom": "name", "Porteur": "link:carriers"},
                         filename="innovations.csv")
    found = imports.blockers(orgs)
    assert [(b.kind, b.record_title, b.target_title) for b in found] == [("link", "Compost", "Lumisol")]
    with pytest.raises(ImportBlockedError, match="s'appuie"):
        imports.undo(orgs.uid, username="editor")
    db.session.rollback()
    imports.undo(innovations.uid, username="editor")  # the later import first: then nothing relies on Lumisol
    db.session.commit()
    assert imports.blockers(orgs) == []
    imports.undo(orgs.uid, username="editor")
    db.session.commit()
    assert _names(Organisation) == [] and _names(Innovation) == []


@pytest.mark.parametrize("others", [0, 5], ids=["asked-from-the-import", "asked-from-what-came-after"])
def test_an_own_record_pointing_to_an_imported_one_blocks(ctx, others):
    """Whichever side is smaller is read (the import's records, or what was written since): same answer."""
    batch = _orgs("Lumisol", *(f"Autre {i}" for i in range(others)))
    lumisol = db.session.scalars(db.select(Organisation).filter_by(name="Lumisol")).one()
    innovation = make_innovation(name="Saisie à la main")
    records.add_link(INNOVATIONS, innovation, "carriers", target_uid=lumisol.uid, role="carrier", username="t")
    db.session.commit()
    assert [(b.kind, b.record_uid) for b in imports.blockers(batch)] == [("link", innovation.uid)]


def test_the_undo_itself_finds_a_link_written_without_a_trace_in_the_history(ctx):
    batch = _orgs("Lumisol")
    lumisol = db.session.scalars(db.select(Organisation).filter_by(name="Lumisol")).one()
    innovation = make_innovation(name="Écrite sans historique")
    db.session.commit()
    db.session.execute(db.insert(InnovationOrganisation.__table__).values(
        innovation_id=innovation.id, organisation_id=lumisol.id, role="carrier"))  # as a bulk path would
    db.session.commit()
    with pytest.raises(ImportBlockedError, match="Écrite sans historique"):
        imports.undo(batch.uid, username="editor")
    db.session.rollback()
    assert _names(Organisation) == ["Lumisol"]


def test_listing_is_newest_first_paginated_with_counts(ctx):
    batches = [_orgs(f"Org {i}", f"Autre {i}", filename=f"f{i}.csv") for i in range(3)]
    page = imports.list_imports(1, page_size=2)
    assert page.total == 3 and page.pages == 2
    assert [s.batch.uid for s in page.items] == [batches[2].uid, batches[1].uid]
    assert page.items[0].counts["created"] == 2
    assert [s.batch.uid for s in imports.list_imports(2, page_size=2).items] == [batches[0].uid]
    assert imports.records(batches[0], page=2, page_size=1).items[0].title == "Autre 0"


# --------------------------------------------------------------------------- bundles

@pytest.fixture
def cities(register_template: Path, tmp_path: Path):
    def make(code: str, **kw):
        return make_city(register_template, tmp_path, code, **kw)
    return make


def _undo(app, uid: str) -> None:
    with inside(app):
        imports.undo(uid, username="t")


def test_an_earlier_bundle_is_undone_when_a_later_one_brought_other_records(cities, tmp_path):
    a, c, b = cities("ville-a"), cities("ville-c"), cities("ville-b")
    with inside(a):
        make_innovation(name="De Ville A", visibility="network")
    with inside(c):
        make_innovation(name="De Ville C", visibility="network")
    _totals, first = import_(b, export(a, tmp_path / "a.zip"))
    _totals, second = import_(b, export(c, tmp_path / "c.zip"))
    _undo(b, first)  # refused before issue 11 ("annulez-le d'abord")
    with inside(b):
        assert _names(Innovation) == ["De Ville C"]
        assert imports.get(second).status == "applied"


@pytest.mark.parametrize(("before", "after"), [(["Compost"], []), ([], ["Vélos", "Bancs", "Abris"])],
                         ids=["asked-from-what-came-after", "asked-from-the-import"])
def test_a_later_bundle_that_replaced_the_same_records_blocks_and_is_named(cities, tmp_path, before, after):
    a, b = cities("ville-a"), cities("ville-b")
    with inside(a):
        make_innovation(name="Éclairage", visibility="network")
        for name in before:
            make_innovation(name=name, visibility="network")
    _totals, first = import_(b, export(a, tmp_path / "v1.zip"))
    with inside(a):
        innovation = db.session.scalars(db.select(Innovation).filter_by(name="Éclairage")).one()
        records.update(INNOVATIONS, innovation, {"tagline": "Version 2"}, username="t")
        for name in after:
            make_innovation(name=name, visibility="network")
    _totals, second = import_(b, export(a, tmp_path / "v2.registre.zip"))
    with inside(b):
        found = imports.blockers(imports.get(first))
        assert [(f.kind, f.record_title, f.batch_uid) for f in found] == [("import", "Éclairage", second)]
        assert "v2.registre.zip" in found[0].describe()
        with pytest.raises(ImportBlockedError, match="v2.registre.zip"):
            imports.undo(first, username="t")
    _undo(b, second)
    with inside(b):
        assert db.session.scalars(db.select(Innovation).filter_by(name="Éclairage")).one().tagline != "Version 2"
        assert imports.blockers(imports.get(first)) == []  # the later import is undone: it no longer blocks
    _undo(b, first)
    with inside(b):
        assert _names(Innovation) == []
