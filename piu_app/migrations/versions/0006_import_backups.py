"""Imports you can see and undo: the backup each import took, and where its history ends.

* `import_batches.backup_name`: the backup file taken just before the import wrote ("" when none
  is known: imports of earlier releases, PostgreSQL hubs).
* `import_batches.log_mark`: the last `change_log` id once the import had written. A later row of
  the change log about one of its records is a later change, which blocks its undo. For the
  imports already recorded, it is found from the change log itself: an import wrote, in one
  transaction (SQLite serialises them), one unbroken run of rows about its own records by its own
  user, starting at its first row after the import began: a bundle one "import" row per record (and
  a "pin" row when it pinned its city's key), a
  spreadsheet each record's "create" row followed by the "update" rows of the links it added to
  that record. The mark is the end of that run. (Only an edit of the last record of a spreadsheet,
  by the same user, before anything else was written, could pass for part of the import.)
* `ix_import_changes_record` becomes (record_uid, batch_id): "which import touched this record"
  is answered from the index alone.

Revision ID: 0006
Revises: 0005
"""
import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_batches = sa.table("import_batches", sa.column("id", sa.Integer), sa.column("kind", sa.String),
                    sa.column("created_at", sa.DateTime),
                    sa.column("username", sa.String), sa.column("log_mark", sa.Integer))
_changes = sa.table("import_changes", sa.column("batch_id", sa.Integer), sa.column("record_uid", sa.String),
                    sa.column("record_type", sa.String), sa.column("action", sa.String))
_log = sa.table("change_log", sa.column("id", sa.Integer), sa.column("record_uid", sa.String),
                sa.column("username", sa.String), sa.column("at", sa.DateTime), sa.column("action", sa.String))


def upgrade():
    # ALTER TABLE, never a batch copy: dropping the old table would cascade to import_changes
    op.add_column("import_batches", sa.Column("backup_name", sa.String(length=255), nullable=False, server_default=""))
    op.add_column("import_batches", sa.Column("log_mark", sa.Integer(), nullable=False, server_default="0"))
    op.drop_index("ix_import_changes_record", table_name="import_changes")
    op.create_index("ix_import_changes_record", "import_changes", ["record_uid", "batch_id"], unique=False)
    bind = op.get_bind()
    for batch_id, kind, created_at, username in bind.execute(
            sa.select(_batches.c.id, _batches.c.kind, _batches.c.created_at, _batches.c.username)
            .order_by(_batches.c.id)).all():
        bind.execute(sa.update(_batches).where(_batches.c.id == batch_id)
                     .values(log_mark=_mark(bind, batch_id, kind, created_at, username)))


def _mark(bind, batch_id, kind, created_at, username) -> int:
    """The end of the run of change-log rows the import wrote (see the module's docstring)."""
    changes = bind.execute(sa.select(_changes.c.record_uid, _changes.c.record_type, _changes.c.action)
                           .where(_changes.c.batch_id == batch_id)).all()
    uids = {uid for uid, record_type, _action in changes if record_type != "documents"}  # attachments: no rows
    created = {uid for uid, _record_type, action in changes if action == "created"}
    before = bind.execute(sa.select(sa.func.max(_log.c.id)).where(_log.c.at < created_at)).scalar() or 0
    mark, seen, last = before, set(), ""
    rows = bind.execute(sa.select(_log.c.id, _log.c.record_uid, _log.c.username, _log.c.action)
                        .where(_log.c.id > before).order_by(_log.c.id)).yield_per(5000)
    for id_, uid, user, action in rows:
        if kind == "bundle" and action == "pin" and user == username:
            mark = id_  # the first signed bundle of a city pins its key: written by the import, last
            break
        if uid not in uids or user != username:
            break
        if kind == "bundle":
            # one "import" row per record written (a user cannot edit another city's records)
            if action != "import" or uid in seen or len(seen) == len(uids):
                break
        elif action == "create" and uid in created and uid not in seen:
            last = uid  # a spreadsheet writes each record's creation, then the links it adds to it
        elif action != "update" or uid != last:
            break
        seen.add(uid)
        mark = id_
    rows.close()
    return mark


def downgrade():
    op.drop_index("ix_import_changes_record", table_name="import_changes")
    op.create_index("ix_import_changes_record", "import_changes", ["record_uid"], unique=False)
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        raise RuntimeError(f"Downgrading below 0006 needs SQLite 3.35 or later (ALTER TABLE … DROP COLUMN); "
                           f"this Python has SQLite {sqlite3.sqlite_version}.")
    # ALTER TABLE … DROP COLUMN, not a batch copy: dropping the table would cascade to import_changes
    op.execute("ALTER TABLE import_batches DROP COLUMN log_mark")
    op.execute("ALTER TABLE import_batches DROP COLUMN backup_name")
