"""What the ingest path remembers: every input applied (so a resend is recognised and writes
nothing twice), and batch jobs with their items (so a client can poll, and what keeps failing
is kept as a dead letter for an operator)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fhir_exchange.store.models import Base, JsonDocument, PrimaryKey, UTCDateTime


class IngestedInput(Base):
    """One input applied: by whom, which (the reader's message id and version), when, what it wrote."""

    __tablename__ = "ingest_input"
    __table_args__ = (UniqueConstraint("sender", "kind", "message_id", "version"),)

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    sender: Mapped[str] = mapped_column(String(64))  # the sending institution's Organization id
    kind: Mapped[str] = mapped_column(String(16))  # hl7v2 | cda | fhir
    message_id: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(64), default="")
    event: Mapped[str] = mapped_column(String(64))
    received: Mapped[datetime] = mapped_column(UTCDateTime())
    written: Mapped[list[str]] = mapped_column(JsonDocument)  # "Type/id/_history/n" of what it wrote
    provenance: Mapped[str] = mapped_column(String(128))  # "Provenance/<id>"


class IngestJob(Base):
    __tablename__ = "ingest_job"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sender: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    finished: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    total: Mapped[int] = mapped_column(Integer)
    # who submitted it: the items are applied later with this client's institution and scopes
    client_id: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(Text)


class IngestJobItem(Base):
    """One message of a batch: its bytes (sealed at rest) until done, and what became of it."""

    __tablename__ = "ingest_job_item"
    __table_args__ = (UniqueConstraint("job_id", "position"), Index("ix_ingest_job_item_status", "job_id", "status"))

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(36), ForeignKey("ingest_job.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    data: Mapped[str | None] = mapped_column(Text, nullable=True)  # sealed base64 of the bytes; cleared when done
    status: Mapped[str] = mapped_column(String(16))  # queued | done | duplicate | failed | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument, nullable=True)
