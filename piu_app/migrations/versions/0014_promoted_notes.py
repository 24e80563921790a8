"""A barrier's page reads only its own citations: `ix_sticky_notes_promoted`, `ix_note_themes_promoted`, and
the lesson in `ix_lesson_barriers_barrier_id`.

`sticky_notes(promoted_kind, promoted_uid, board_id, hidden, pending)`: the notes turned into a record,
grouped by board, with the two flags that leave a note out, so that both barrier queries are answered
from the index alone. Without it SQLite walked every note of the register, in board order, for one
barrier's page (128 ms → 3 ms at 100 000 notes, the most cited barrier's 4 900 among them), and
grouped the ranking's promoted notes in a temporary tree (56 → 48 ms).

`note_themes(promoted_kind, promoted_uid, board_id)`: the same for the facilitator's themes (few: about
one per board), so that a barrier's page does not read every theme of the register either.

`ix_lesson_barriers_barrier_id` becomes (barrier_id, lesson_id) instead of (barrier_id): a barrier's
page found its citing lessons from the index but read each citation's row for its lesson (the most
cited barrier's 26 000 citing lessons of 100 000: 57 → 27 ms CPU for that query).

Only indexes change; no data does.

Revision ID: 0014
Revises: 0013
"""
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_sticky_notes_promoted", "sticky_notes",
                    ["promoted_kind", "promoted_uid", "board_id", "hidden", "pending"])
    op.create_index("ix_note_themes_promoted", "note_themes", ["promoted_kind", "promoted_uid", "board_id"])
    op.drop_index("ix_lesson_barriers_barrier_id", table_name="lesson_barriers")
    op.create_index("ix_lesson_barriers_barrier_id", "lesson_barriers", ["barrier_id", "lesson_id"])


def downgrade():
    op.drop_index("ix_lesson_barriers_barrier_id", table_name="lesson_barriers")
    op.create_index("ix_lesson_barriers_barrier_id", "lesson_barriers", ["barrier_id"])
    op.drop_index("ix_note_themes_promoted", table_name="note_themes")
    op.drop_index("ix_sticky_notes_promoted", table_name="sticky_notes")
