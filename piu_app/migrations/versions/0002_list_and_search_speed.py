"""Indexes that serve list pages at 100 000 records; uid -> rowid table for the SQLite search index

Revision ID: 0002
Revises: 0001
"""
from alembic import op

from piu_app.database import SEARCH_KEYS, SEARCH_TABLE, is_sqlite

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SHARED = ("documents", "innovations", "territories", "themes", "organisations", "funding_aids", "needs", "persons",
          "places", "experiments", "support_programmes", "experiment_fundings", "lessons", "procurements", "reviews")
FILTERED = {"innovations": ("innovation_kind", "deployment_stage")}


def upgrade():
    for t in SHARED:
        op.drop_index(f"ix_{t}_visibility", table_name=t)
        op.create_index(f"ix_{t}_live_sort_key", t, ["deleted", "sort_key"])
        op.create_index(f"ix_{t}_live_updated_at", t, ["deleted", "updated_at"])
        op.create_index(f"ix_{t}_visibility_live", t, ["visibility", "deleted", "sort_key"])
        for c in FILTERED.get(t, ()):
            op.drop_index(f"ix_{t}_{c}", table_name=t)
            op.create_index(f"ix_{t}_{c}_live", t, [c, "deleted", "sort_key"])
    bind = op.get_bind()
    if is_sqlite(bind):
        bind.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {SEARCH_KEYS} "
                             "(id INTEGER PRIMARY KEY, uid VARCHAR(36) NOT NULL UNIQUE)")
        bind.exec_driver_sql(f"INSERT OR IGNORE INTO {SEARCH_KEYS} (id, uid) SELECT rowid, uid FROM {SEARCH_TABLE}")


def downgrade():
    bind = op.get_bind()
    if is_sqlite(bind):
        bind.exec_driver_sql(f"DROP TABLE IF EXISTS {SEARCH_KEYS}")
    for t in SHARED:
        for c in FILTERED.get(t, ()):
            op.drop_index(f"ix_{t}_{c}_live", table_name=t)
            op.create_index(f"ix_{t}_{c}", t, [c])
        op.drop_index(f"ix_{t}_visibility_live", table_name=t)
        op.drop_index(f"ix_{t}_live_updated_at", table_name=t)
        op.drop_index(f"ix_{t}_live_sort_key", table_name=t)
        op.create_index(f"ix_{t}_visibility", t, ["visibility"])
