"""Alembic, driven from code: ``baylink migrate`` and the test suite both use this."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData

from consent import models as _consent_models  # noqa: F401  (registers the consent page tables on Base)
from fhir_exchange.audit import models as _audit_models  # noqa: F401  (registers the audit tables on Base)
from fhir_exchange.auth import models as _auth_models  # noqa: F401  (registers the auth tables on Base)
from fhir_exchange.ingest import models as _ingest_models  # noqa: F401  (registers the ingest tables on Base)
from fhir_exchange.notify import models as _notify_models  # noqa: F401  (registers the outbox on Base)
from fhir_exchange.store.models import Base
from referral.voucher import models as _voucher_models  # noqa: F401  (registers the voucher ledger on Base)
from terminology.models import TerminologyBase

MIGRATIONS = Path(__file__).parent / "migrations"
# Every package's tables; one linear migration history covers them all.
METADATA: list[MetaData] = [Base.metadata, TerminologyBase.metadata]
# Database-specific text indexes made by migration 0004 (FTS5 on SQLite, pg_trgm on
# PostgreSQL): not in the models, so left out when comparing the schema with them.
TEXT_INDEX_NAMES = ("term_concept_text", "ix_term_concept_search_trgm")


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    return not (name or "").startswith(TEXT_INDEX_NAMES)


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
