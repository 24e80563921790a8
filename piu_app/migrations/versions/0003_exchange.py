"""Exchange: import batches (to report and undo), conflicts kept, spreadsheet mappings, home territory

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('import_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('origin_instance', sa.String(length=64), nullable=False),
    sa.Column('origin_name', sa.String(length=200), nullable=False),
    sa.Column('format_version', sa.String(length=20), nullable=False),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('undone_at', sa.DateTime(), nullable=True),
    sa.Column('undone_by', sa.String(length=80), nullable=False),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_batches')),
    sa.UniqueConstraint('uid', name=op.f('uq_import_batches_uid'))
    )
    with op.batch_alter_table('import_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_batches_created_at'), ['created_at'], unique=False)

    op.create_table('spreadsheet_mappings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_type', sa.String(length=40), nullable=False),
    sa.Column('header_key', sa.String(length=64), nullable=False),
    sa.Column('mapping', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spreadsheet_mappings')),
    sa.UniqueConstraint('record_type', 'header_key', name=op.f('uq_spreadsheet_mappings_record_type'))
    )
    op.create_table('import_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('record_type', sa.String(length=40), nullable=False),
    sa.Column('record_uid', sa.String(length=36), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['import_batches.id'], name=op.f('fk_import_changes_batch_id_import_batches'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_changes'))
    )
    with op.batch_alter_table('import_changes', schema=None) as batch_op:
        batch_op.create_index('ix_import_changes_batch', ['batch_id', 'id'], unique=False)
        batch_op.create_index('ix_import_changes_record', ['record_uid'], unique=False)

    op.create_table('import_conflicts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('record_type', sa.String(length=40), nullable=False),
    sa.Column('record_uid', sa.String(length=36), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('origin_instance', sa.String(length=64), nullable=False),
    sa.Column('local_version', sa.Integer(), nullable=False),
    sa.Column('incoming_version', sa.Integer(), nullable=False),
    sa.Column('incoming', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['import_batches.id'], name=op.f('fk_import_conflicts_batch_id_import_batches'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_conflicts'))
    )
    with op.batch_alter_table('import_conflicts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_conflicts_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index('ix_import_conflicts_record', ['record_uid'], unique=False)

    with op.batch_alter_table('instance_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('home_territory_uid', sa.String(length=36), server_default='', nullable=False))



def downgrade():
    with op.batch_alter_table('instance_settings', schema=None) as batch_op:
        batch_op.drop_column('home_territory_uid')

    with op.batch_alter_table('import_conflicts', schema=None) as batch_op:
        batch_op.drop_index('ix_import_conflicts_record')
        batch_op.drop_index(batch_op.f('ix_import_conflicts_batch_id'))

    op.drop_table('import_conflicts')
    with op.batch_alter_table('import_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_import_changes_record')
        batch_op.drop_index('ix_import_changes_batch')

    op.drop_table('import_changes')
    op.drop_table('spreadsheet_mappings')
    with op.batch_alter_table('import_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_batches_created_at'))

    op.drop_table('import_batches')
