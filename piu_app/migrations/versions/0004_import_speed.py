"""Faster bundle imports and re-imports.

* Drop the indexes on `deleted`, `sort_key` and `updated_at` alone: the (deleted, …) indexes serve
  every list query, and each index costs every write (a bundle import rebuilds them all).
* `content_digest`: the fingerprint of a record's content as an import last wrote it, so that a
  re-import recognises an unchanged record without reading it back (empty: compare in full).

Revision ID: 0004
Revises: 0003
"""
import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The tables as they were at this revision (a migration never reads today's models), as in 0002.
SHARED = ("documents", "innovations", "territories", "themes", "organisations", "funding_aids", "needs", "persons",
          "places", "experiments", "support_programmes", "experiment_fundings", "lessons", "procurements", "reviews")
ALONE = ("deleted", "sort_key", "updated_at")


def upgrade():
    for t in SHARED:
        for c in ALONE:
            op.drop_index(f"ix_{t}_{c}", table_name=t)
        op.add_column(t, sa.Column("content_digest", sa.String(length=40), nullable=False, server_default=""))


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        raise RuntimeError(f"Downgrading below 0004 needs SQLite 3.35 or later (ALTER TABLE … DROP COLUMN); "
                           f"this Python has SQLite {sqlite3.sqlite_version}.")
    for t in SHARED:
        # ALTER TABLE … DROP COLUMN (SQLite 3.35+), not a batch copy: other tables' foreign keys point here
        op.execute(f'ALTER TABLE "{t}" DROP COLUMN content_digest')
        for c in ALONE:
            op.create_index(f"ix_{t}_{c}", t, [c])
