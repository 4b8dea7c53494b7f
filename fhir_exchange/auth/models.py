"""Registered clients and the client assertions already used (for ``jti`` replay refusal)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fhir_exchange.store.models import Base, JsonDocument, PrimaryKey, UTCDateTime


class AuthClient(Base):
    """A hospital system registered for one institution, with the public keys it signs with."""

    __tablename__ = "auth_client"

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    institution: Mapped[str] = mapped_column(String(64))  # Organization id
    name: Mapped[str | None] = mapped_column(Text)
    jwks: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    scopes: Mapped[str] = mapped_column(Text)  # the most it may be granted, space-separated
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime())


class UsedAssertion(Base):
    """A client assertion's ``jti``, kept until the assertion expires, so it cannot be replayed."""

    __tablename__ = "auth_used_assertion"
    __table_args__ = (
        UniqueConstraint("client_id", "jti"),
        Index("ix_auth_used_assertion_expires", "expires"),
    )

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64))
    jti: Mapped[str] = mapped_column(String(255))
    expires: Mapped[datetime] = mapped_column(UTCDateTime())
