"""terminology tables: code systems, concepts, designations, is-a edges, concept maps,
value set definitions and the load log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('term_code_system',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('url', sa.String(length=255), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('resource_id', sa.String(length=64), nullable=True),
    sa.Column('hierarchical', sa.Boolean(), nullable=False),
    sa.Column('content', sa.String(length=16), nullable=False),
    sa.Column('current', sa.Boolean(), nullable=False),
    sa.Column('concept_count', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_term_code_system')),
    sa.UniqueConstraint('url', 'version', name=op.f('uq_term_code_system_url'))
    )
    with op.batch_alter_table('term_code_system', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_term_code_system_resource_id'), ['resource_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_term_code_system_url'), ['url'], unique=False)

    op.create_table('term_concept_map',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('url', sa.String(length=255), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('resource_id', sa.String(length=64), nullable=True),
    sa.Column('source_scope', sa.String(length=255), nullable=True),
    sa.Column('target_scope', sa.String(length=255), nullable=True),
    sa.Column('current', sa.Boolean(), nullable=False),
    sa.Column('element_count', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_term_concept_map')),
    sa.UniqueConstraint('url', 'version', name=op.f('uq_term_concept_map_url'))
    )
    with op.batch_alter_table('term_concept_map', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_term_concept_map_resource_id'), ['resource_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_term_concept_map_url'), ['url'], unique=False)

    op.create_table('term_load',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('url', sa.String(length=255), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('origin', sa.Text(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('item_count', sa.Integer(), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_term_load'))
    )
    op.create_table('term_value_set',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('url', sa.String(length=255), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('resource_id', sa.String(length=64), nullable=True),
    sa.Column('current', sa.Boolean(), nullable=False),
    sa.Column('compose', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_term_value_set')),
    sa.UniqueConstraint('url', 'version', name=op.f('uq_term_value_set_url'))
    )
    with op.batch_alter_table('term_value_set', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_term_value_set_resource_id'), ['resource_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_term_value_set_url'), ['url'], unique=False)

    op.create_table('term_concept',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('system_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=255), nullable=False),
    sa.Column('display', sa.Text(), nullable=True),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['system_pk'], ['term_code_system.pk'], name=op.f('fk_term_concept_system_pk_term_code_system'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_term_concept')),
    sa.UniqueConstraint('system_pk', 'code', name=op.f('uq_term_concept_system_pk'))
    )
    op.create_table('term_concept_parent',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('system_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=255), nullable=False),
    sa.Column('parent_code', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['system_pk'], ['term_code_system.pk'], name=op.f('fk_term_concept_parent_system_pk_term_code_system'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_term_concept_parent'))
    )
    with op.batch_alter_table('term_concept_parent', schema=None) as batch_op:
        batch_op.create_index('ix_term_concept_parent_child', ['system_pk', 'code'], unique=False)
        batch_op.create_index('ix_term_concept_parent_parent', ['system_pk', 'parent_code'], unique=False)

    op.create_table('term_map_element',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('map_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source_system', sa.String(length=255), nullable=False),
    sa.Column('source_code', sa.String(length=255), nullable=False),
    sa.Column('target_system', sa.String(length=255), nullable=True),
    sa.Column('target_code', sa.String(length=255), nullable=True),
    sa.Column('target_display', sa.Text(), nullable=True),
    sa.Column('equivalence', sa.String(length=16), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['map_pk'], ['term_concept_map.pk'], name=op.f('fk_term_map_element_map_pk_term_concept_map'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_term_map_element'))
    )
    with op.batch_alter_table('term_map_element', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_term_map_element_map_pk'), ['map_pk'], unique=False)
        batch_op.create_index('ix_term_map_element_source', ['source_system', 'source_code', 'map_pk'], unique=False)

    op.create_table('term_designation',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('concept_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('derived_by', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['concept_pk'], ['term_concept.pk'], name=op.f('fk_term_designation_concept_pk_term_concept'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_term_designation'))
    )
    with op.batch_alter_table('term_designation', schema=None) as batch_op:
        batch_op.create_index('ix_term_designation_concept', ['concept_pk', 'language'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('term_designation', schema=None) as batch_op:
        batch_op.drop_index('ix_term_designation_concept')

    op.drop_table('term_designation')
    with op.batch_alter_table('term_map_element', schema=None) as batch_op:
        batch_op.drop_index('ix_term_map_element_source')
        batch_op.drop_index(batch_op.f('ix_term_map_element_map_pk'))

    op.drop_table('term_map_element')
    with op.batch_alter_table('term_concept_parent', schema=None) as batch_op:
        batch_op.drop_index('ix_term_concept_parent_parent')
        batch_op.drop_index('ix_term_concept_parent_child')

    op.drop_table('term_concept_parent')
    op.drop_table('term_concept')
    with op.batch_alter_table('term_value_set', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_term_value_set_url'))
        batch_op.drop_index(batch_op.f('ix_term_value_set_resource_id'))

    op.drop_table('term_value_set')
    op.drop_table('term_load')
    with op.batch_alter_table('term_concept_map', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_term_concept_map_url'))
        batch_op.drop_index(batch_op.f('ix_term_concept_map_resource_id'))

    op.drop_table('term_concept_map')
    with op.batch_alter_table('term_code_system', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_term_code_system_url'))
        batch_op.drop_index(batch_op.f('ix_term_code_system_resource_id'))

    op.drop_table('term_code_system')
