"""Peers found from indexes: `ix_<owner>_themes_theme_id` becomes (theme_id, <owner>_id) instead of
(theme_id), and peers' experiments get `ix_experiments_origin`.

Peers' "similar innovations" read the most recent innovations of each theme of an innovation: with an
index on the theme alone SQLite sorted each theme's rows (about 15 000 at 100 000 innovations) on
every innovation page.

`ix_experiments_origin` (origin_instance, innovation_id, deleted): which innovations peers tried is read
from two ranges of it (origins before and after ours), not from every experiment (190 ms → 8 ms at
100 000 innovations with 5 000 peers' experiments). Only indexes change; no data does.

Revision ID: 0013
Revises: 0008
"""
from alembic import op

revision = "0013"
down_revision = "0008"
branch_labels = None
depends_on = None

OWNERS = ("innovation", "need", "funding_aid", "support_programme", "barrier", "workshop")


def upgrade():
    for owner in OWNERS:
        op.drop_index(f"ix_{owner}_themes_theme_id", table_name=f"{owner}_themes")
        op.create_index(f"ix_{owner}_themes_theme_id", f"{owner}_themes", ["theme_id", f"{owner}_id"])
    op.create_index("ix_experiments_origin", "experiments", ["origin_instance", "innovation_id", "deleted"])


def downgrade():
    op.drop_index("ix_experiments_origin", table_name="experiments")
    for owner in OWNERS:
        op.drop_index(f"ix_{owner}_themes_theme_id", table_name=f"{owner}_themes")
        op.create_index(f"ix_{owner}_themes_theme_id", f"{owner}_themes", ["theme_id"])
