"""Drop the indexes on `deleted`, `sort_key` and `updated_at` alone: the (deleted, …) indexes serve
every list query, and each index costs every write (a bundle import rebuilds them all)

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SHARED = ("documents", "innovations", "territories", "themes", "organisations", "funding_aids", "needs", "persons",
          "places", "experiments", "support_programmes", "experiment_fundings", "lessons", "procurements", "reviews")
ALONE = ("deleted", "sort_key", "updated_at")


def upgrade():
    for t in SHARED:
        for c in ALONE:
            op.drop_index(f"ix_{t}_{c}", table_name=t)


def downgrade():
    for t in SHARED:
        for c in ALONE:
            op.create_index(f"ix_{t}_{c}", t, [c])
