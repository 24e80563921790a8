"""Bulk loads: indexes built after the load come back identical, a failed load loses none, and the
shortcuts of the bulk paths (timestamps, folding, reserved ids, the WAL checkpoint) change nothing."""

from __future__ import annotations

import contextlib
import datetime
import sqlite3
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime
from sqlalchemy.dialects import postgresql, sqlite

from piu_app.database import (
    BULK_INDEX_ROWS,
    WAL_AUTOCHECKPOINT_PAGES,
    _bulk_bind_processor,
    checkpoint_afterwards,
    deferred_indexes,
    fold,
    insert_rows,
    is_sqlite,
    reserve_ids,
    wait_for_checkpoints,
)
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


@given(st.datetimes(min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 12, 31)))
def test_bulk_timestamps_are_stored_as_sqlalchemy_stores_them(value):
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        fast = _bulk_bind_processor(DateTime(), dialect) or (lambda v: v)
        assert fast(value) == (DateTime().dialect_impl(dialect).bind_processor(dialect) or (lambda v: v))(value)


@given(st.text(st.characters(max_codepoint=127)) | st.text())
def test_fold_of_ascii_text_is_the_full_fold(text):
    full = "".join(ch for ch in unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
                   if not unicodedata.combining(ch))
    assert fold(text) == full


def test_reserved_ids_are_free_and_the_orm_numbers_after_them(ctx):
    conn = db.session.connection()
    ids = reserve_ids(conn, ChangeLog.__table__, 3)
    assert len(set(ids)) == 3
    at = utcnow()
    insert_rows(conn, ChangeLog.__table__, ["id", "record_type", "record_uid", "record_title", "action", "username",
                                            "at", "changes"],
                [(id_, "innovations", f"r{id_}", "", "import", "bench", at, {}) for id_ in ids])
    later = ChangeLog(record_type="innovations", record_uid="after", record_title="", action="create",
                      username="bench", changes={})
    db.session.add(later)
    db.session.flush()
    assert later.id not in ids
    assert {r.id for r in db.session.scalars(db.select(ChangeLog).where(ChangeLog.record_uid.like("r%")))} == set(ids)


def test_a_bulk_write_leaves_the_wal_checkpoint_to_a_background_thread_after_its_commit(ctx):
    if not is_sqlite(db.engine):
        pytest.skip("SQLite's write-ahead log")
    with contextlib.closing(sqlite3.connect(db.engine.url.database)) as other:  # the schema into the file
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    conn = db.session.connection()
    with checkpoint_afterwards(conn):
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        insert_rows(conn, ChangeLog.__table__, ["record_type", "record_uid", "record_title", "action", "username",
                                                "at", "changes"],
                    [("innovations", f"w{i}", "x" * 2000, "import", "bench", utcnow(), {}) for i in range(3000)])
    db.session.commit()
    database = Path(db.engine.url.database)
    assert _in_database_file(database) == 0  # committed, in the log: the commit did not copy it over
    db.session.remove()  # the connection goes back to the pool: the checkpoint starts
    wait_for_checkpoints()
    assert _in_database_file(database) == 3000
    assert db.session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WAL_AUTOCHECKPOINT_PAGES
    assert db.session.scalar(db.select(db.func.count()).select_from(ChangeLog).where(ChangeLog.record_uid.like("w%"))) \
        == 3000


def _in_database_file(database: Path) -> int:
    """Rows of the bulk write found in the database file itself (immutable=1: the log is not read)."""
    with contextlib.closing(sqlite3.connect(f"{database.resolve().as_uri()}?immutable=1", uri=True)) as conn:
        return conn.execute("SELECT count(*) FROM change_log WHERE record_uid LIKE 'w%'").fetchone()[0]
