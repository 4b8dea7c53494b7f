"""text index for $expand?filter=: FTS5 trigram table on SQLite, pg_trgm GIN on PostgreSQL

Both index term_concept.search_text so that a filter reads the index instead of every
concept. SQLite's is an external-content FTS5 table: the terminology store fills it in bulk
after inserting concepts (one statement, far faster than a per-row trigger), and triggers
remove and re-index rows on delete and update.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_term_concept_search_trgm ON term_concept USING gin (search_text gin_trgm_ops)")
        return
    op.execute(
        "CREATE VIRTUAL TABLE term_concept_text USING fts5("
        "search_text, content='term_concept', content_rowid='pk', tokenize='trigram')"
    )
    op.execute("INSERT INTO term_concept_text(term_concept_text) VALUES ('rebuild')")
    op.execute(
        "CREATE TRIGGER term_concept_text_delete AFTER DELETE ON term_concept BEGIN "
        "INSERT INTO term_concept_text(term_concept_text, rowid, search_text) "
        "VALUES ('delete', old.pk, old.search_text); END"
    )
    op.execute(
        "CREATE TRIGGER term_concept_text_update AFTER UPDATE OF search_text ON term_concept BEGIN "
        "INSERT INTO term_concept_text(term_concept_text, rowid, search_text) "
        "VALUES ('delete', old.pk, old.search_text); "
        "INSERT INTO term_concept_text(rowid, search_text) VALUES (new.pk, new.search_text); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_term_concept_search_trgm")
        return
    for trigger in ("delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS term_concept_text_{trigger}")
    op.execute("DROP TABLE IF EXISTS term_concept_text")
