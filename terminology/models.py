"""Terminology tables: code systems and their concepts, designations and hierarchy;
concept maps and their elements; value set definitions; and a load log.

One row per (url, version) of a code system or concept map: a re-load with new content
makes a new version and marks it current, so earlier versions stay answerable. These tables
are this package's own (a separate ``MetaData``); the FHIR store keeps the matching
CodeSystem / ConceptMap / ValueSet resources, and the two are written in one transaction.
The schema comes from the service's Alembic migrations.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
JsonDocument = JSON().with_variant(JSONB(), "postgresql")
PrimaryKey = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class TerminologyBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CodeSystemVersion(TerminologyBase):
    __tablename__ = "term_code_system"
    __table_args__ = (UniqueConstraint("url", "version"),)

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(Text)
    resource_id: Mapped[str | None] = mapped_column(String(64), index=True)
    hierarchical: Mapped[bool] = mapped_column(Boolean, default=False)
    content: Mapped[str] = mapped_column(String(16), default="complete")
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    concept_count: Mapped[int] = mapped_column(Integer, default=0)
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Concept(TerminologyBase):
    __tablename__ = "term_concept"
    __table_args__ = (UniqueConstraint("system_pk", "code"),)

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    system_pk: Mapped[int] = mapped_column(ForeignKey("term_code_system.pk", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(255))
    display: Mapped[str | None] = mapped_column(Text)
    # Lower-cased display and designations in every language, space-delimited: what
    # ``$expand?filter=`` matches words and Chinese substrings against.
    search_text: Mapped[str] = mapped_column(Text, default="")


class Designation(TerminologyBase):
    __tablename__ = "term_designation"
    __table_args__ = (Index("ix_term_designation_concept", "concept_pk", "language"),)

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    concept_pk: Mapped[int] = mapped_column(ForeignKey("term_concept.pk", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text)
    # How a derived designation was made (e.g. "opencc:s2hk"); NULL when it came with the source.
    derived_by: Mapped[str | None] = mapped_column(String(32))


class ConceptParent(TerminologyBase):
    """One is-a edge: ``code`` is a child of ``parent_code`` in one code system version."""

    __tablename__ = "term_concept_parent"
    __table_args__ = (
        Index("ix_term_concept_parent_child", "system_pk", "code"),
        Index("ix_term_concept_parent_parent", "system_pk", "parent_code"),
    )

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    system_pk: Mapped[int] = mapped_column(ForeignKey("term_code_system.pk", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(255))
    parent_code: Mapped[str] = mapped_column(String(255))


class ConceptMapVersion(TerminologyBase):
    __tablename__ = "term_concept_map"
    __table_args__ = (UniqueConstraint("url", "version"),)

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(Text)
    resource_id: Mapped[str | None] = mapped_column(String(64), index=True)
    source_scope: Mapped[str | None] = mapped_column(String(255))
    target_scope: Mapped[str | None] = mapped_column(String(255))
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    element_count: Mapped[int] = mapped_column(Integer, default=0)
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MapElement(TerminologyBase):
    __tablename__ = "term_map_element"
    __table_args__ = (Index("ix_term_map_element_source", "source_system", "source_code", "map_pk"),)

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    map_pk: Mapped[int] = mapped_column(ForeignKey("term_concept_map.pk", ondelete="CASCADE"), index=True)
    source_system: Mapped[str] = mapped_column(String(255))
    source_code: Mapped[str] = mapped_column(String(255))
    target_system: Mapped[str | None] = mapped_column(String(255))
    target_code: Mapped[str | None] = mapped_column(String(255))
    target_display: Mapped[str | None] = mapped_column(Text)
    equivalence: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)


class ValueSetVersion(TerminologyBase):
    __tablename__ = "term_value_set"
    __table_args__ = (UniqueConstraint("url", "version"),)

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    resource_id: Mapped[str | None] = mapped_column(String(64), index=True)
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    compose: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    content_hash: Mapped[str] = mapped_column(String(64))
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TerminologyLoad(TerminologyBase):
    """One row per load that changed something: what, from where, which version, when."""

    __tablename__ = "term_load"

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
