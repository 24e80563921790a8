"""Bulk loads: indexes built after the load come back identical, and a failed load loses none."""

from __future__ import annotations

import pytest

from piu_app.database import BULK_INDEX_ROWS, deferred_indexes, insert_rows, is_sqlite
from piu_app.models import ChangeLog, db, utcnow


def _indexes(conn, table):
    return sorted(conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        (table,)).all())


def test_indexes_are_built_again_after_a_bulk_load_and_kept_after_a_failed_one(ctx):
    conn = db.session.connection()
    if not is_sqlite(conn):
        pytest.skip("indexes are deferred on SQLite only")
    before = _indexes(conn, "innovations")
    assert before
    with deferred_indexes(conn, {"innovations": BULK_INDEX_ROWS}):
        assert _indexes(conn, "innovations") == []
    assert _indexes(conn, "innovations") == before
    db.session.commit()

    with pytest.raises(RuntimeError), deferred_indexes(db.session.connection(), {"innovations": BULK_INDEX_ROWS}):
        raise RuntimeError("the import failed")
    db.session.rollback()
    assert _indexes(db.session.connection(), "innovations") == before


def test_small_loads_keep_their_indexes(ctx):
    conn = db.session.connection()
    before = _indexes(conn, "innovations") if is_sqlite(conn) else None
    with deferred_indexes(conn, {"innovations": BULK_INDEX_ROWS - 1}):
        if before is not None:
            assert _indexes(conn, "innovations") == before


def test_insert_rows_writes_what_the_orm_reads_back(ctx):
    at = utcnow()
    insert_rows(db.session.connection(), ChangeLog.__table__,
                ["record_type", "record_uid", "record_title", "action", "username", "at", "changes"],
                [("innovations", f"u{i}", "Titre « é »", "import", "bench", at, {"origin": ["", "B"]})
                 for i in range(3)])
    rows = db.session.scalars(db.select(ChangeLog).where(ChangeLog.record_uid.like("u%"))
                              .order_by(ChangeLog.record_uid)).all()
    assert [(r.record_uid, r.record_title, r.at, r.changes) for r in rows] == \
        [(f"u{i}", "Titre « é »", at, {"origin": ["", "B"]}) for i in range(3)]


def test_insert_rows_refuses_to_leave_out_a_column_with_a_default(ctx):
    with pytest.raises(ValueError, match="at"):
        insert_rows(db.session.connection(), ChangeLog.__table__, ["record_type", "record_uid", "record_title",
                                                                   "action", "username", "changes"], [("x",) * 6])
