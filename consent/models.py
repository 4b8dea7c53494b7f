"""The consent page's own tables: one-time sign-in codes, signed-in sessions, and each
person's remembered language. Consents themselves, their evidence (Provenance) and the
access log (AuditEvent) are FHIR resources in the store."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fhir_exchange.store.models import Base, PrimaryKey, UTCDateTime


class SignInCode(Base):
    """A one-time code sent to the phone or email on record. Only its keyed hash is kept.

    A challenge is recorded even when the number given matches no one (``person`` is
    None), so the page answers the same either way and reveals nobody's presence."""

    __tablename__ = "consent_signin_code"
    __table_args__ = (Index("ix_consent_signin_code_lookup", "lookup", "created"),
                      Index("ix_consent_signin_code_address", "client_address", "created"))

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    challenge: Mapped[str] = mapped_column(String(64), unique=True)  # the random id the page carries
    lookup: Mapped[str] = mapped_column(String(64))  # keyed hash of the document number typed (rate limit)
    # the identity document typed ("system|number"), sealed; None if it matched no one
    document: Mapped[str | None] = mapped_column(Text, nullable=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))  # sms | email
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    expires: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used: Mapped[bool] = mapped_column(default=False)
    client_address: Mapped[str] = mapped_column(String(64))


class PageSession(Base):
    """A signed-in browser: the cookie carries a random token; only its hash is stored."""

    __tablename__ = "consent_page_session"
    __table_args__ = (Index("ix_consent_page_session_expires", "expires"),)

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    document: Mapped[str] = mapped_column(Text)  # the identity document signed in with, sealed
    method: Mapped[str] = mapped_column(String(32))  # how: otp-sms | otp-email
    acting: Mapped[str | None] = mapped_column(String(128), nullable=True)  # Patient/… or RelatedPerson/… chosen
    patient: Mapped[str | None] = mapped_column(String(64), nullable=True)  # whose consents are shown
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    expires: Mapped[datetime] = mapped_column(UTCDateTime())
    client_address: Mapped[str] = mapped_column(String(64))


class LanguagePreference(Base):
    __tablename__ = "consent_language_preference"

    person: Mapped[str] = mapped_column(String(128), primary_key=True)
    language: Mapped[str] = mapped_column(String(16))
    updated: Mapped[datetime] = mapped_column(UTCDateTime())
