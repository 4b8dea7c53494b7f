"""Signing in to the consent page with a one-time code, and the signed-in session.

- The person types an identity document number; a six-digit code goes to the phone or
  email on the record holding it. The page answers the same whether or not the number is on
  record, so it cannot be used to find out who is a patient.
- Codes live 10 minutes, allow 5 tries, and are kept only as a keyed hash (HMAC with the
  deployment's blind-index key). Requests are limited to 3 per document and 10 per network
  address in 15 minutes.
- A session is a random token in an HTTP-only, SameSite=Strict (and, outside development
  on plain http, Secure) cookie; the database keeps its hash. It lasts 30 minutes from
  sign-in. Every form carries the session's CSRF token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from consent.models import PageSession, SignInCode
from fhir_exchange import crypto

CODE_LIFETIME = timedelta(minutes=10)
SESSION_LIFETIME = timedelta(minutes=30)
RATE_WINDOW = timedelta(minutes=15)
MAX_PER_DOCUMENT = 3
MAX_PER_ADDRESS = 10
MAX_TRIES = 5


class TooManyAttempts(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Challenge:
    challenge: str
    code: str | None  # to send (None when the number matched no one: nothing is sent)


def _now() -> datetime:
    return datetime.now(UTC)


def _code_hash(challenge: str, code: str) -> str:
    return crypto.vault().blind("baylink:signin-code", f"{challenge}:{code}")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_challenge(session: Session, document: str, on_record: bool, channel: str, client_address: str,
                  now: datetime | None = None) -> Challenge:
    """Record a sign-in challenge for ``document`` ("system|number"). Raises TooManyAttempts."""
    moment = now or _now()
    lookup = crypto.vault().blind("baylink:signin-lookup", document)
    since = moment - RATE_WINDOW
    by_document = session.execute(select(func.count()).select_from(SignInCode).where(
        SignInCode.lookup == lookup, SignInCode.created >= since)).scalar_one()
    by_address = session.execute(select(func.count()).select_from(SignInCode).where(
        SignInCode.client_address == client_address, SignInCode.created >= since)).scalar_one()
    if by_document >= MAX_PER_DOCUMENT or by_address >= MAX_PER_ADDRESS:
        raise TooManyAttempts
    challenge = secrets.token_urlsafe(24)
    code = f"{secrets.randbelow(10**6):06d}"
    session.add(SignInCode(
        challenge=challenge, lookup=lookup, document=crypto.vault().seal_text(document) if on_record else None,
        code_hash=_code_hash(challenge, code), channel=channel, created=moment, expires=moment + CODE_LIFETIME,
        attempts=0, used=False, client_address=client_address[:64]))
    session.flush()
    return Challenge(challenge, code if on_record else None)


def verify(session: Session, challenge: str, code: str, now: datetime | None = None) -> tuple[str, str] | None:
    """(document, method) when the code is right, else None. Each try counts; a used,
    expired or exhausted challenge never verifies."""
    moment = now or _now()
    row = session.execute(select(SignInCode).where(SignInCode.challenge == challenge).with_for_update()).scalar_one_or_none()
    if row is None or row.used or row.expires < moment or row.attempts >= MAX_TRIES:
        return None
    session.execute(update(SignInCode).where(SignInCode.pk == row.pk).values(attempts=row.attempts + 1))
    if row.document is None or not secrets.compare_digest(row.code_hash, _code_hash(challenge, code.strip())):
        return None
    session.execute(update(SignInCode).where(SignInCode.pk == row.pk).values(used=True))
    return crypto.vault().open_text(row.document), f"otp-{row.channel}"


def start(session: Session, document: str, method: str, client_address: str, language: str | None,
          now: datetime | None = None) -> str:
    """A new session; returns the cookie token."""
    moment = now or _now()
    token = secrets.token_urlsafe(32)
    session.add(PageSession(token_hash=_token_hash(token), document=crypto.vault().seal_text(document), method=method,
                            acting=None, patient=None, csrf=secrets.token_urlsafe(24), created=moment,
                            expires=moment + SESSION_LIFETIME, client_address=client_address[:64], language=language))
    session.flush()
    return token


def current(session: Session, token: str | None, now: datetime | None = None) -> PageSession | None:
    if not token:
        return None
    row = session.execute(select(PageSession).where(PageSession.token_hash == _token_hash(token))).scalar_one_or_none()
    if row is None or row.expires < (now or _now()):
        return None
    return row


def document_of(row: PageSession) -> str:
    return crypto.vault().open_text(row.document)


def end(session: Session, token: str | None) -> None:
    if token:
        session.execute(update(PageSession).where(PageSession.token_hash == _token_hash(token)).values(expires=_now()))
