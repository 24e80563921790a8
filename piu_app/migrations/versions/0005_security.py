"""Security: revocable sessions and the pinned signing keys of peer cities.

* `users.session_token`: a random token carried by the session cookie; logout, a password change
  and a reset replace it, so that a copied cookie stops working at once (empty: no session yet).
* `signed_manifests`: for each peer city, the last manifest it signed (uid, version and content
  fingerprint of each record it shared) with its signature, so that this city can relay the
  city's records to others with the proof that they are the origin's own.
* `peer_keys`: the Ed25519 public key first seen for each city (trust on first use); a later
  bundle of that city must be signed by it. An administrator can replace it on purpose; the keys
  it replaced are kept in `previous_keys`.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_token", sa.String(length=64), nullable=False, server_default=""))
    op.create_table(
        "peer_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("origin_instance", sa.String(length=64), nullable=False),
        sa.Column("city_name", sa.String(length=200), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=100), nullable=False),
        sa.Column("pinned_at", sa.DateTime(), nullable=False),
        sa.Column("pinned_by", sa.String(length=80), nullable=False),
        sa.Column("previous_keys", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_peer_keys")),
        sa.UniqueConstraint("origin_instance", name=op.f("uq_peer_keys_origin_instance")),
    )
    op.create_table(
        "signed_manifests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("origin_instance", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("manifest", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signed_manifests")),
        sa.UniqueConstraint("origin_instance", name=op.f("uq_signed_manifests_origin_instance")),
    )


def downgrade():
    op.drop_table("signed_manifests")
    op.drop_table("peer_keys")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_token")
