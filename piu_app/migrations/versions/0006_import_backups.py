"""Imports you can see and undo: the backup each import took, and where its history ends.

* `import_batches.backup_name`: the backup file taken just before the import wrote ("" when none
  is known: imports of earlier releases, PostgreSQL hubs).
* `import_batches.log_mark`: the last `change_log` id once the import had written. A later row of
  the change log about one of its records is a later change, which blocks its undo. For the
  imports already recorded, it is found from the change log itself: an import wrote, in one
  transaction (SQLite serialises them), one unbroken run of rows about its own records by its own
  user, starting at its first row after the import began; the mark is the end of that run.
* `ix_import_changes_record` becomes (record_uid, batch_id): "which import touched this record"
  is answered from the index alone.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_batches = sa.table("import_batches", sa.column("id", sa.Integer), sa.column("created_at", sa.DateTime),
                    sa.column("username", sa.String), sa.column("log_mark", sa.Integer))
_changes = sa.table("import_changes", sa.column("batch_id", sa.Integer), sa.column("record_uid", sa.String))
_log = sa.table("change_log", sa.column("id", sa.Integer), sa.column("record_uid", sa.String),
                sa.column("username", sa.String), sa.column("at", sa.DateTime))


def upgrade():
    with op.batch_alter_table("import_batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("backup_name", sa.String(length=255), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("log_mark", sa.Integer(), nullable=False, server_default="0"))
    op.drop_index("ix_import_changes_record", table_name="import_changes")
    op.create_index("ix_import_changes_record", "import_changes", ["record_uid", "batch_id"], unique=False)
    bind = op.get_bind()
    for batch_id, created_at, username in bind.execute(
            sa.select(_batches.c.id, _batches.c.created_at, _batches.c.username).order_by(_batches.c.id)).all():
        bind.execute(sa.update(_batches).where(_batches.c.id == batch_id)
                     .values(log_mark=_mark(bind, batch_id, created_at, username)))


def _mark(bind, batch_id, created_at, username) -> int:
    """The end of the run of change-log rows the import wrote (see the module's docstring)."""
    uids = set(bind.execute(sa.select(_changes.c.record_uid).where(_changes.c.batch_id == batch_id)).scalars())
    before = bind.execute(sa.select(sa.func.max(_log.c.id)).where(_log.c.at < created_at)).scalar() or 0
    mark = before
    rows = bind.execute(sa.select(_log.c.id, _log.c.record_uid, _log.c.username).where(_log.c.id > before)
                        .order_by(_log.c.id)).yield_per(5000)
    for id_, uid, user in rows:
        if uid not in uids or user != username:
            break
        mark = id_
    rows.close()
    return mark


def downgrade():
    op.drop_index("ix_import_changes_record", table_name="import_changes")
    op.create_index("ix_import_changes_record", "import_changes", ["record_uid"], unique=False)
    with op.batch_alter_table("import_batches", schema=None) as batch_op:
        batch_op.drop_column("log_mark")
        batch_op.drop_column("backup_name")
