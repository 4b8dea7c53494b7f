"""search index lookups end in resource_pk; per-resource index on (resource_pk, param)

A search reads its driving criterion from an index alone, and checks each candidate resource
against the other criteria with one seek.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOOKUPS = {
    "idx_string": ["res_type", "param", "value"],
    "idx_token": ["res_type", "param", "code", "system"],
    "idx_date": ["res_type", "param", "low", "high"],
    "idx_reference": ["res_type", "param", "target_id", "target_type"],
    "idx_quantity": ["res_type", "param", "value"],
    "idx_number": ["res_type", "param", "value"],
}


TABLES = [*LOOKUPS, "idx_uri"]


def upgrade() -> None:
    for table, columns in LOOKUPS.items():
        op.drop_index(f"ix_{table}_lookup", table_name=table)
        op.create_index(f"ix_{table}_lookup", table, [*columns, "resource_pk"])
    for table in TABLES:
        op.drop_index(f"ix_{table}_resource_pk", table_name=table)
        op.create_index(f"ix_{table}_resource", table, ["resource_pk", "param"])


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_resource", table_name=table)
        op.create_index(f"ix_{table}_resource_pk", table, ["resource_pk"])
    for table, columns in LOOKUPS.items():
        op.drop_index(f"ix_{table}_lookup", table_name=table)
        op.create_index(f"ix_{table}_lookup", table, columns)
