"""The demonstration register loads completely, and loading it twice adds nothing."""

from __future__ import annotations

from piu_app.extensions import db
from piu_app.registry import INNOVATIONS, RECORD_TYPES
from piu_app.services import demo, records, search


def test_demo_loads_once(ctx):
    added = demo.load()
    db.session.commit()
    assert added["innovations"] == 30
    assert set(added) == set(RECORD_TYPES)
    assert demo.load() == {}
    assert records.list_records(INNOVATIONS).total == 30
    results, _ = search.search("eclairage solaire")
    assert any(r.record_type.title_of(r.record) == "Éclairage public solaire intelligent" for r in results)
    assert records.experiments_without_lessons()  # the dashboard has something to show
