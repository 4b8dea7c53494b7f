"""consent page outbox

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('search_snapshot', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner', sa.String(length=64), nullable=True))
    op.create_table('consent_language_preference',
    sa.Column('person', sa.String(length=128), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('person', name=op.f('pk_consent_language_preference'))
    )
    op.create_table('consent_page_session',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('method', sa.String(length=32), nullable=False),
    sa.Column('acting', sa.String(length=128), nullable=True),
    sa.Column('patient', sa.String(length=64), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('csrf', sa.String(length=64), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=False),
    sa.Column('client_address', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_consent_page_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_consent_page_session_token_hash'))
    )
    with op.batch_alter_table('consent_page_session', schema=None) as batch_op:
        batch_op.create_index('ix_consent_page_session_expires', ['expires'], unique=False)

    op.create_table('consent_signin_code',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('challenge', sa.String(length=64), nullable=False),
    sa.Column('lookup', sa.String(length=64), nullable=False),
    sa.Column('document', sa.Text(), nullable=True),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('used', sa.Boolean(), nullable=False),
    sa.Column('client_address', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_consent_signin_code')),
    sa.UniqueConstraint('challenge', name=op.f('uq_consent_signin_code_challenge'))
    )
    with op.batch_alter_table('consent_signin_code', schema=None) as batch_op:
        batch_op.create_index('ix_consent_signin_code_address', ['client_address', 'created'], unique=False)
        batch_op.create_index('ix_consent_signin_code_lookup', ['lookup', 'created'], unique=False)

    op.create_table('notification_outbox',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('dedupe_key', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('recipient', sa.String(length=255), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent', sa.Boolean(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('dead', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_notification_outbox')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_notification_outbox_dedupe_key'))
    )
    with op.batch_alter_table('notification_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_notification_outbox_due', ['sent', 'next_attempt'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('search_snapshot', schema=None) as batch_op:
        batch_op.drop_column('owner')
    with op.batch_alter_table('notification_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_outbox_due')

    op.drop_table('notification_outbox')
    with op.batch_alter_table('consent_signin_code', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_signin_code_lookup')
        batch_op.drop_index('ix_consent_signin_code_address')

    op.drop_table('consent_signin_code')
    with op.batch_alter_table('consent_page_session', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_page_session_expires')

    op.drop_table('consent_page_session')
    op.drop_table('consent_language_preference')
