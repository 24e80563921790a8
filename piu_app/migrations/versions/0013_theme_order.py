"""The records of a theme in order from the index: `ix_<owner>_themes_theme_id` becomes
(theme_id, <owner>_id) instead of (theme_id).

Peers' "similar innovations" read the most recent innovations of each theme of an innovation: with an
index on the theme alone SQLite sorted each theme's rows (about 15 000 at 100 000 innovations) on
every innovation page. Only indexes change; no data does.

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


def downgrade():
    for owner in OWNERS:
        op.drop_index(f"ix_{owner}_themes_theme_id", table_name=f"{owner}_themes")
        op.create_index(f"ix_{owner}_themes_theme_id", f"{owner}_themes", ["theme_id"])
