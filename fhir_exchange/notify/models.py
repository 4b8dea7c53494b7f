"""The notification outbox: one row per message to send, written in the transaction of the
change that causes it (so a message exists if and only if its change committed), and
delivered afterwards, with retries, by a Celery task."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fhir_exchange.store.models import Base, JsonDocument, PrimaryKey, UTCDateTime


class OutboxMessage(Base):
    __tablename__ = "notification_outbox"
    __table_args__ = (Index("ix_notification_outbox_due", "sent", "next_attempt"),)

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    # what makes the message unique (e.g. "consent-request:Consent/42:approved"): writing the
    # same key twice writes one message, so re-running whatever caused it sends nothing twice
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    # whom to tell, as a reference ("Patient/1", "RelatedPerson/2", "Organization/hosp"): the
    # address is looked up when the message is sent, so the outbox holds no contact details
    recipient: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    sent: Mapped[bool] = mapped_column(default=False)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    dead: Mapped[bool] = mapped_column(default=False)  # gave up after MAX_ATTEMPTS
