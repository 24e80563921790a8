"""Every page fast at 100 000 records: link columns and drafts indexed with `deleted` and the order.

* Each link column of a shared record (`lessons.experiment_id`, `experiments.innovation_id`…) is
  indexed as (column, deleted, sort_key) instead of alone. Without planner statistics SQLite took
  the (deleted, …) index for "the live records that point here": the dashboard's "experiments
  without lessons learned" walked every lesson for each experiment (2.2 s at 10 000 innovations,
  no answer at 100 000), and every detail page walked whole tables.
* `draft` is indexed as (draft, deleted, updated_at) instead of alone: the dashboard's newest drafts.
* `documents.linked_uid` as (linked_uid, deleted, sort_key): a record's attachments on its page.

Revision ID: 0007
Revises: 0006
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The tables as they were at this revision (a migration never reads today's models), as in 0002 and 0004.
SHARED = ("territories", "organisations", "persons", "places", "documents", "themes", "innovations", "needs",
          "experiments", "lessons", "procurements", "funding_aids", "experiment_fundings", "support_programmes",
          "reviews")
LINKS = {
    "territories": ("parent_id",), "organisations": ("territory_id",), "persons": ("organisation_id",),
    "places": ("operator_id", "territory_id"), "needs": ("buyer_id", "territory_id"),
    "experiments": ("innovation_id", "need_id", "buyer_id", "territory_id", "place_id"),
    "lessons": ("experiment_id", "author_id"), "procurements": ("experiment_id", "buyer_id", "supplier_id"),
    "funding_aids": ("financer_id",), "experiment_fundings": ("experiment_id", "funding_aid_id"),
    "support_programmes": ("operator_id", "territory_id", "place_id", "contact_person_id"),
    "reviews": ("innovation_id", "experiment_id", "reviewer_person_id", "reviewer_org_id"),
    "documents": ("linked_uid",),  # not a foreign key (a uid of any record type), read the same way
}


def upgrade():
    for t in SHARED:
        op.drop_index(f"ix_{t}_draft", table_name=t)
        op.create_index(f"ix_{t}_draft_live", t, ["draft", "deleted", "updated_at"])
        for c in LINKS.get(t, ()):
            op.drop_index(f"ix_{t}_{c}", table_name=t)
            op.create_index(f"ix_{t}_{c}_live", t, [c, "deleted", "sort_key"])


def downgrade():
    for t in SHARED:
        for c in LINKS.get(t, ()):
            op.drop_index(f"ix_{t}_{c}_live", table_name=t)
            op.create_index(f"ix_{t}_{c}", t, [c])
        op.drop_index(f"ix_{t}_draft_live", table_name=t)
        op.create_index(f"ix_{t}_draft", t, ["draft"])
