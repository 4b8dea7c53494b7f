"""ingest: inputs applied (resend detection), batch jobs and their items

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('ingest_input',
    sa.Column('pk', PK, autoincrement=True, nullable=False),
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('received', sa.DateTime(timezone=True), nullable=False),
    sa.Column('written', JSON, nullable=False),
    sa.Column('provenance', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_ingest_input')),
    sa.UniqueConstraint('sender', 'kind', 'message_id', 'version', name=op.f('uq_ingest_input_sender'))
    )
    op.create_table('ingest_job',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished', sa.DateTime(timezone=True), nullable=True),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_job'))
    )
    op.create_table('ingest_job_item',
    sa.Column('pk', PK, autoincrement=True, nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('data', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=True),
    sa.Column('error', JSON, nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['ingest_job.id'], name=op.f('fk_ingest_job_item_job_id_ingest_job'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_ingest_job_item')),
    sa.UniqueConstraint('job_id', 'position', name=op.f('uq_ingest_job_item_job_id'))
    )
    with op.batch_alter_table('ingest_job_item', schema=None) as batch_op:
        batch_op.create_index('ix_ingest_job_item_status', ['job_id', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ingest_job_item', schema=None) as batch_op:
        batch_op.drop_index('ix_ingest_job_item_status')
    op.drop_table('ingest_job_item')
    op.drop_table('ingest_job')
    op.drop_table('ingest_input')
