"""fhir store: resources, history, search index

Revision ID: 0001
Revises:
Create Date: 2026-11-24 16:59:42.895164
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('resource',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('res_id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('content', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_resource')),
    sa.UniqueConstraint('res_type', 'res_id', name=op.f('uq_resource_res_type'))
    )
    with op.batch_alter_table('resource', schema=None) as batch_op:
        batch_op.create_index('ix_resource_type_updated', ['res_type', 'last_updated'], unique=False)

    op.create_table('search_snapshot',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('query', sa.Text(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('pks', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_search_snapshot'))
    )
    with op.batch_alter_table('search_snapshot', schema=None) as batch_op:
        batch_op.create_index('ix_search_snapshot_created', ['created'], unique=False)

    op.create_table('idx_date',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=100), nullable=False),
    sa.Column('low', sa.DateTime(), nullable=False),
    sa.Column('high', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['resource_pk'], ['resource.pk'], name=op.f('fk_idx_date_resource_pk_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idx_date'))
    )
    with op.batch_alter_table('idx_date', schema=None) as batch_op:
        batch_op.create_index('ix_idx_date_lookup', ['res_type', 'param', 'low', 'high'], unique=False)
        batch_op.create_index(batch_op.f('ix_idx_date_resource_pk'), ['resource_pk'], unique=False)

    op.create_table('idx_number',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['resource_pk'], ['resource.pk'], name=op.f('fk_idx_number_resource_pk_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idx_number'))
    )
    with op.batch_alter_table('idx_number', schema=None) as batch_op:
        batch_op.create_index('ix_idx_number_lookup', ['res_type', 'param', 'value'], unique=False)
        batch_op.create_index(batch_op.f('ix_idx_number_resource_pk'), ['resource_pk'], unique=False)

    op.create_table('idx_quantity',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('system', sa.String(length=255), nullable=True),
    sa.Column('code', sa.String(length=100), nullable=True),
    sa.Column('unit', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['resource_pk'], ['resource.pk'], name=op.f('fk_idx_quantity_resource_pk_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idx_quantity'))
    )
    with op.batch_alter_table('idx_quantity', schema=None) as batch_op:
        batch_op.create_index('ix_idx_quantity_lookup', ['res_type', 'param', 'value'], unique=False)
        batch_op.create_index(batch_op.f('ix_idx_quantity_resource_pk'), ['resource_pk'], unique=False)

    op.create_table('idx_reference',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=100), nullable=False),
    sa.Column('target_type', sa.String(length=64), nullable=True),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['resource_pk'], ['resource.pk'], name=op.f('fk_idx_reference_resource_pk_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idx_reference'))
    )
    with op.batch_alter_table('idx_reference', schema=None) as batch_op:
        batch_op.create_index('ix_idx_reference_lookup', ['res_type', 'param', 'target_id', 'target_type'], unique=False)
        batch_op.create_index(batch_op.f('ix_idx_reference_resource_pk'), ['resource_pk'], unique=False)
        batch_op.create_index('ix_idx_reference_target', ['target_type', 'target_id'], unique=False)

    op.create_table('idx_string',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=100), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('exact', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['resource_pk'], ['resource.pk'], name=op.f('fk_idx_string_resource_pk_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idx_string'))
    )
    with op.batch_alter_table('idx_string', schema=None) as batch_op:
        batch_op.create_index('ix_idx_string_lookup', ['res_type', 'param', 'value'], unique=False)
        batch_op.create_index(batch_op.f('ix_idx_string_resource_pk'), ['resource_pk'], unique=False)

    op.create_table('idx_token',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=100), nullable=False),
    sa.Column('system', sa.String(length=255), nullable=True),
    sa.Column('code', sa.String(length=255), nullable=True),
    sa.Column('text', sa.String(length=255), nullable=True),
    sa.Column('type_system', sa.String(length=255), nullable=True),
    sa.Column('type_code', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['resource_pk'], ['resource.pk'], name=op.f('fk_idx_token_resource_pk_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idx_token'))
    )
    with op.batch_alter_table('idx_token', schema=None) as batch_op:
        batch_op.create_index('ix_idx_token_lookup', ['res_type', 'param', 'code', 'system'], unique=False)
        batch_op.create_index(batch_op.f('ix_idx_token_resource_pk'), ['resource_pk'], unique=False)

    op.create_table('idx_uri',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['resource_pk'], ['resource.pk'], name=op.f('fk_idx_uri_resource_pk_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idx_uri'))
    )
    with op.batch_alter_table('idx_uri', schema=None) as batch_op:
        batch_op.create_index('ix_idx_uri_lookup', ['res_type', 'param', 'value'], unique=False)
        batch_op.create_index(batch_op.f('ix_idx_uri_resource_pk'), ['resource_pk'], unique=False)

    op.create_table('resource_version',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('res_id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', sa.DateTime(timezone=True), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('content', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['resource_pk'], ['resource.pk'], name=op.f('fk_resource_version_resource_pk_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_resource_version')),
    sa.UniqueConstraint('res_type', 'res_id', 'version_id', name=op.f('uq_resource_version_res_type'))
    )
    with op.batch_alter_table('resource_version', schema=None) as batch_op:
        batch_op.create_index('ix_resource_version_type_updated', ['res_type', 'last_updated'], unique=False)
        batch_op.create_index('ix_resource_version_updated', ['last_updated'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('resource_version', schema=None) as batch_op:
        batch_op.drop_index('ix_resource_version_updated')
        batch_op.drop_index('ix_resource_version_type_updated')

    op.drop_table('resource_version')
    with op.batch_alter_table('idx_uri', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idx_uri_resource_pk'))
        batch_op.drop_index('ix_idx_uri_lookup')

    op.drop_table('idx_uri')
    with op.batch_alter_table('idx_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idx_token_resource_pk'))
        batch_op.drop_index('ix_idx_token_lookup')

    op.drop_table('idx_token')
    with op.batch_alter_table('idx_string', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idx_string_resource_pk'))
        batch_op.drop_index('ix_idx_string_lookup')

    op.drop_table('idx_string')
    with op.batch_alter_table('idx_reference', schema=None) as batch_op:
        batch_op.drop_index('ix_idx_reference_target')
        batch_op.drop_index(batch_op.f('ix_idx_reference_resource_pk'))
        batch_op.drop_index('ix_idx_reference_lookup')

    op.drop_table('idx_reference')
    with op.batch_alter_table('idx_quantity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idx_quantity_resource_pk'))
        batch_op.drop_index('ix_idx_quantity_lookup')

    op.drop_table('idx_quantity')
    with op.batch_alter_table('idx_number', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idx_number_resource_pk'))
        batch_op.drop_index('ix_idx_number_lookup')

    op.drop_table('idx_number')
    with op.batch_alter_table('idx_date', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idx_date_resource_pk'))
        batch_op.drop_index('ix_idx_date_lookup')

    op.drop_table('idx_date')
    with op.batch_alter_table('search_snapshot', schema=None) as batch_op:
        batch_op.drop_index('ix_search_snapshot_created')

    op.drop_table('search_snapshot')
    with op.batch_alter_table('resource', schema=None) as batch_op:
        batch_op.drop_index('ix_resource_type_updated')

    op.drop_table('resource')

