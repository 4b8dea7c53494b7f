"""resource.release_facts: what a release decision can depend on, kept with the current version

Existing resources get theirs here, read from their stored content (facts read no sealed value,
so no key is needed).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
BATCH = 2000


def upgrade() -> None:
    from fhir_exchange.release_facts import stored_facts

    op.add_column('resource', sa.Column('release_facts', sa.Text(), nullable=True))
    resource = sa.table('resource', sa.column('pk', sa.BigInteger()), sa.column('res_type', sa.String()),
                        sa.column('res_id', sa.String()), sa.column('deleted', sa.Boolean()),
                        sa.column('content', JSON), sa.column('release_facts', sa.Text()))
    bind = op.get_bind()
    after = 0
    while True:
        rows = bind.execute(sa.select(resource.c.pk, resource.c.res_type, resource.c.res_id, resource.c.content)
                            .where(resource.c.pk > after, resource.c.deleted == sa.false())
                            .order_by(resource.c.pk).limit(BATCH)).all()
        if not rows:
            break
        values = [{"b_pk": row.pk, "facts": stored_facts(row.res_type, row.res_id, row.content)}
                  for row in rows if row.content is not None]
        if values:
            bind.execute(resource.update().where(resource.c.pk == sa.bindparam("b_pk"))
                         .values(release_facts=sa.bindparam("facts")), values)
        after = rows[-1].pk


def downgrade() -> None:
    op.drop_column('resource', 'release_facts')
