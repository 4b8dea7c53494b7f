"""auth clients and used assertions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('auth_client',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('institution', sa.String(length=64), nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('jwks', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_auth_client')),
    sa.UniqueConstraint('client_id', name=op.f('uq_auth_client_client_id'))
    )
    op.create_table('auth_used_assertion',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('jti', sa.String(length=255), nullable=False),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_auth_used_assertion')),
    sa.UniqueConstraint('client_id', 'jti', name=op.f('uq_auth_used_assertion_client_id'))
    )
    with op.batch_alter_table('auth_used_assertion', schema=None) as batch_op:
        batch_op.create_index('ix_auth_used_assertion_expires', ['expires'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('auth_used_assertion', schema=None) as batch_op:
        batch_op.drop_index('ix_auth_used_assertion_expires')

    op.drop_table('auth_used_assertion')
    op.drop_table('auth_client')
