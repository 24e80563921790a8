"""Pages whose cost must not grow with the register (issue 11, item 12): counted and explained, not timed.

The dashboard asked SQLite for "experiments that no live lesson points to" and got a plan that read
every lesson for each experiment: 19 ms at 1 000 innovations, 2.2 s at 10 000, no answer at 100 000.
These tests hold what fixed it: a fixed number of statements whatever the number of rows, and plans
that reach lessons, experiments and attachments through the (link, deleted, …) indexes of migration
0006, never by walking a whole table. Timings at scale are in bench/RESULTS.md (bench/register.py).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import event

from piu_app.database import writing
from piu_app.extensions import db
from piu_app.services import records
from tests import factories


@pytest.fixture
def sqlite_app(app: Flask) -> Flask:
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("SQLite query plans (PostgreSQL plans with its own statistics)")
    return app


@contextlib.contextmanager
def _statements(app: Flask) -> Iterator[list[tuple[str, object]]]:
    seen: list[tuple[str, object]] = []

    def listener(_conn, _cursor, statement, parameters, _context, _executemany):
        seen.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def _plan(app: Flask, statement: str, parameters: object) -> list[str]:
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            return [row[-1] for row in raw.driver_connection.execute("EXPLAIN QUERY PLAN " + statement, parameters)]
        finally:
            raw.close()


def _grow(app: Flask, experiments: int, *, with_lessons: int) -> None:
    with app.test_request_context(), writing():
        innovation = factories.make_innovation(name=f"Innovation {experiments}")
        for i in range(experiments):
            experiment = factories.make_experiment(innovation, title=f"Essai {experiments}-{i}",
                                                   status="completed" if i % 2 else "ongoing")
            if i < with_lessons:
                factories.make("lessons", title=f"Leçon {i}", experiment=experiment.uid)
        db.session.commit()


def _dashboard_statements(app: Flask, client) -> list[tuple[str, object]]:
    with _statements(app) as seen:
        assert client.get("/").status_code == 200
    return [s for s in seen if s[0].lstrip().upper().startswith("SELECT")]


def test_the_dashboard_statements_do_not_grow_with_the_rows(sqlite_app, reader):
    _grow(sqlite_app, 4, with_lessons=1)
    few = _dashboard_statements(sqlite_app, reader)
    _grow(sqlite_app, 40, with_lessons=10)
    more = _dashboard_statements(sqlite_app, reader)
    _grow(sqlite_app, 80, with_lessons=30)
    many = _dashboard_statements(sqlite_app, reader)
    # one fewer once finished experiments alone fill the list (the unfinished ones are not asked for)
    assert len(many) == len(more) <= len(few)
    page = reader.get("/").get_data(as_text=True)
    assert "Essai 80-79" in page  # the newest finished experiment without a lesson is listed


def test_experiments_without_lessons_reach_lessons_through_the_index(sqlite_app, reader):
    _grow(sqlite_app, 6, with_lessons=2)
    with _statements(sqlite_app) as seen:
        reader.get("/")
    queries = [s for s in seen if re.search(r"FROM lessons\s+WHERE lessons.experiment_id", s[0])]
    assert queries, "the dashboard asks for experiments without lessons"
    for statement, parameters in queries:
        plan = _plan(sqlite_app, statement, parameters)
        assert any("ix_lessons_experiment_id_live (experiment_id=? AND deleted=?)" in p for p in plan), plan
        assert not any("TEMP B-TREE" in p for p in plan), plan  # no sort of every live experiment
        assert not any(p.startswith("SCAN") for p in plan), plan


def test_finished_experiments_come_first_then_the_newest(sqlite_app):
    _grow(sqlite_app, 6, with_lessons=0)
    with sqlite_app.app_context():
        listed = records.experiments_without_lessons(4)
    assert [e.status for e in listed] == ["completed", "completed", "completed", "ongoing"]
    assert [e.title for e in listed[:3]] == ["Essai 6-5", "Essai 6-3", "Essai 6-1"]


def test_a_detail_page_reaches_what_points_to_it_through_the_link_indexes(sqlite_app, reader):
    """Records that point to an innovation (experiments, reviews) and its attachments: never a walk of
    a whole table in title order (what SQLite chose without statistics before migration 0006)."""
    _grow(sqlite_app, 3, with_lessons=1)
    with sqlite_app.app_context():
        from piu_app.models import Innovation

        uid = db.session.scalar(db.select(Innovation.uid).filter_by(name="Innovation 3"))
    with _statements(sqlite_app) as seen:
        assert reader.get(f"/innovations/{uid}").status_code == 200
    linked = [s for s in seen if re.search(r"WHERE (experiments\.innovation_id|reviews\.innovation_id|"
                                           r"documents\.linked_uid) = \?", s[0])]
    assert len(linked) >= 3
    for statement, parameters in linked:
        plan = _plan(sqlite_app, statement, parameters)
        assert any(re.search(r"USING (COVERING )?INDEX ix_\w+_(innovation_id|linked_uid)_live", p) for p in plan), plan


def test_an_export_reads_its_pages_in_id_order_without_sorting_a_table_again(sqlite_app, tmp_path):
    """The export reads each table in pages of 5 000 rows by id. The condition on the records that
    leave (shared, not drafts, their required links leaving too) matches almost every record; when
    SQLite served it with the draft or visibility index, each page sorted the whole table again
    (41 s instead of 10 at 100 000 innovations). Every statement of an export either walks a table
    in id order or seeks by id: never a temporary sort, never a list or draft index."""
    from piu_app.exchange import bundle_export
    from piu_app.services import demo

    with sqlite_app.app_context(), writing():
        demo.load()
        db.session.commit()
    seen: list[str] = []
    with sqlite_app.test_request_context(), writing():
        # bulk reads go straight to the driver (database.driver_rows): traced there, with their values
        driver = db.session.connection().connection.driver_connection
        driver.set_trace_callback(seen.append)
        try:
            bundle_export.export_bundle(tmp_path / "b.zip", level="network")
        finally:
            driver.set_trace_callback(None)
        pages = [s for s in seen if s.lstrip().upper().startswith("SELECT") and " LIMIT " in s.upper()]
        assert len(pages) >= 10  # the pages of every record table
        for statement in pages:
            plan = " ; ".join(row[-1] for row in driver.execute("EXPLAIN QUERY PLAN " + statement))
            assert "TEMP B-TREE" not in plan and "_draft" not in plan and "_visibility" not in plan, (statement, plan)
