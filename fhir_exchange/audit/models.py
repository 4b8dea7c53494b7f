"""The hash chain over AuditEvents: one link per event, in order; and the chain's head, a
single row locked while a link is appended so that links never fork."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fhir_exchange.store.models import Base, PrimaryKey, UTCDateTime

GENESIS = "0" * 64


class AuditLink(Base):
    __tablename__ = "audit_chain"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False)
    resource_pk: Mapped[int] = mapped_column(PrimaryKey, ForeignKey("resource.pk"), unique=True)
    event_id: Mapped[str] = mapped_column(String(64))
    recorded: Mapped[datetime] = mapped_column(UTCDateTime())
    content_hash: Mapped[str] = mapped_column(String(64))
    chain_hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    chain_hash: Mapped[str] = mapped_column(String(64))
