"""SQLAlchemy models: the current version of each resource, its full history, and the
search index tables filled at write time (one table per search parameter type).

The FHIR JSON is kept as sent (plus server-set ``id`` and ``meta``) in a JSON column that
is JSONB on PostgreSQL. The schema is built only through Alembic migrations
(``baylink/migrations``), never ``create_all``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
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
PrimaryKey = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC timestamp column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ResourceRow(Base):
    """The current version of one resource (a tombstone once deleted)."""

    __tablename__ = "resource"

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    res_type: Mapped[str] = mapped_column(String(64))
    res_id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(Integer)
    last_updated: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    content: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument, nullable=True)
    # what a release decision about this version can depend on (fhir_exchange/release_facts.py);
    # NULL for a tombstone, or where the resource alone cannot tell (the gate reads content then)
    release_facts: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        UniqueConstraint("res_type", "res_id"),
        Index("ix_resource_type_updated", "res_type", "last_updated"),
    )


class ResourceVersion(Base):
    """Every version ever written, including delete tombstones (content NULL)."""

    __tablename__ = "resource_version"

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    resource_pk: Mapped[int] = mapped_column(ForeignKey("resource.pk", ondelete="CASCADE"))
    res_type: Mapped[str] = mapped_column(String(64))
    res_id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(Integer)
    last_updated: Mapped[datetime] = mapped_column(UTCDateTime())
    method: Mapped[str] = mapped_column(String(8))  # POST | PUT | DELETE
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    content: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument, nullable=True)

    __table_args__ = (
        UniqueConstraint("res_type", "res_id", "version_id"),
        Index("ix_resource_version_updated", "last_updated"),
        Index("ix_resource_version_type_updated", "res_type", "last_updated"),
    )


class SearchSnapshot(Base):
    """The ordered matches of one search, so that its pages stay stable under concurrent writes."""

    __tablename__ = "search_snapshot"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    res_type: Mapped[str] = mapped_column(String(64))
    query: Mapped[str] = mapped_column(Text)  # the canonical query string, for the page links
    total: Mapped[int] = mapped_column(Integer)
    pks: Mapped[list[int]] = mapped_column(JSON)
    # who made it (a hash of client, institution, user, purpose and scopes): pages are served
    # to that caller only, since what the gate released, and so the total, is theirs
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (Index("ix_search_snapshot_created", "created"),)


class IndexRow:
    """The columns every search index row has: which resource, its type, which parameter.

    Each table's lookup index ends in ``resource_pk``: a search reads matching resources from
    the index alone, and checks a candidate resource with one seek."""

    id: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    resource_pk: Mapped[int] = mapped_column(ForeignKey("resource.pk", ondelete="CASCADE"))
    res_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(100))


class StringIndex(IndexRow, Base):
    __tablename__ = "idx_string"
    value: Mapped[str] = mapped_column(String(255))
    exact: Mapped[str] = mapped_column(Text)
    __table_args__ = (
        Index("ix_idx_string_resource", "resource_pk", "param"),
        Index("ix_idx_string_lookup", "res_type", "param", "value", "resource_pk"),
    )


class TokenIndex(IndexRow, Base):
    __tablename__ = "idx_token"
    system: Mapped[str | None] = mapped_column(String(255), nullable=True)
    code: Mapped[str | None] = mapped_column(String(255), nullable=True)
    text: Mapped[str | None] = mapped_column(String(255), nullable=True)
    type_system: Mapped[str | None] = mapped_column(String(255), nullable=True)
    type_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    __table_args__ = (
        Index("ix_idx_token_resource", "resource_pk", "param"),
        Index("ix_idx_token_lookup", "res_type", "param", "code", "system", "resource_pk"),
    )


class DateIndex(IndexRow, Base):
    __tablename__ = "idx_date"
    low: Mapped[datetime] = mapped_column(DateTime(timezone=False))  # naive UTC
    high: Mapped[datetime] = mapped_column(DateTime(timezone=False))  # naive UTC
    __table_args__ = (
        Index("ix_idx_date_resource", "resource_pk", "param"),
        Index("ix_idx_date_lookup", "res_type", "param", "low", "high", "resource_pk"),
    )


class ReferenceIndex(IndexRow, Base):
    __tablename__ = "idx_reference"
    target_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    target_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    __table_args__ = (
        Index("ix_idx_reference_resource", "resource_pk", "param"),
        Index("ix_idx_reference_lookup", "res_type", "param", "target_id", "target_type", "resource_pk"),
        Index("ix_idx_reference_target", "target_type", "target_id"),
    )


class QuantityIndex(IndexRow, Base):
    __tablename__ = "idx_quantity"
    value: Mapped[float] = mapped_column(Float)
    system: Mapped[str | None] = mapped_column(String(255), nullable=True)
    code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    unit: Mapped[str | None] = mapped_column(String(100), nullable=True)
    __table_args__ = (
        Index("ix_idx_quantity_resource", "resource_pk", "param"),
        Index("ix_idx_quantity_lookup", "res_type", "param", "value", "resource_pk"),
    )


class NumberIndex(IndexRow, Base):
    __tablename__ = "idx_number"
    value: Mapped[float] = mapped_column(Float)
    __table_args__ = (
        Index("ix_idx_number_resource", "resource_pk", "param"),
        Index("ix_idx_number_lookup", "res_type", "param", "value", "resource_pk"),
    )


class UriIndex(IndexRow, Base):
    __tablename__ = "idx_uri"
    value: Mapped[str] = mapped_column(Text)
    __table_args__ = (
        Index("ix_idx_uri_resource", "resource_pk", "param"),
        Index("ix_idx_uri_lookup", "res_type", "param", "value"),
    )


INDEX_TABLES = (StringIndex, TokenIndex, DateIndex, ReferenceIndex, QuantityIndex, NumberIndex, UriIndex)
