"""Workshops travel in bundles (issue 12): `workshop_participant_counts` keeps, for a workshop
another city shared, how many of its participants were of each actor group (participants never
travel; a bundle carries these counts only). A new, empty table: nothing of an earlier register
changes. The participants get an index on (workshop, actor group), from which an export groups
those counts without sorting the table.

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "workshop_participant_counts",
        sa.Column("workshop_id", sa.Integer(), nullable=False),
        sa.Column("actor_group", sa.String(length=40), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["workshop_id"], ["workshops.id"],
                                name=op.f("fk_workshop_participant_counts_workshop_id_workshops"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workshop_id", "actor_group", name=op.f("pk_workshop_participant_counts")),
    )
    op.create_index("ix_workshop_participants_workshop_group", "workshop_participants",
                    ["workshop_id", "actor_group"])


def downgrade():
    op.drop_index("ix_workshop_participants_workshop_group", table_name="workshop_participants")
    op.drop_table("workshop_participant_counts")
