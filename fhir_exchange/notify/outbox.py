"""Enqueue in the writer's transaction; deliver afterwards, at least once, through a sender.

``enqueue`` is called inside the transaction of the change that causes the message, so a
message is recorded exactly when its change commits, even if the broker is down then.
``deliver`` (run by the Celery task ``baylink.deliver_notifications``, on a beat and after
each enqueueing request) sends what is due, marks it sent in its own transaction, and backs
off exponentially on failure; after ``MAX_ATTEMPTS`` a message is marked dead and stays in
the table for an operator to see.

What a message says, and to which address, is decided at delivery by a ``Composer``: the
outbox holds references (``Patient/1``), never phone numbers or email addresses.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fhir_exchange.notify.models import OutboxMessage

log = logging.getLogger("baylink.notify")
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Message:
    """One message as it is sent: to an address, over a channel (sms, email)."""

    channel: str
    address: str
    subject: str
    body: str
    language: str = "en"
    kind: str = ""


class Sender(Protocol):
    """Sends one message; raises on failure (the outbox retries)."""

    def send(self, message: Message) -> None: ...


class Composer(Protocol):
    """The messages an outbox row becomes: its text in the recipient's language, to the
    recipient's current address. An empty list means there is no one to tell (e.g. no
    contact on record): the row is marked sent with that noted."""

    def __call__(self, session: Session, row: OutboxMessage) -> list[Message]: ...


class ConsoleSender:
    """Development and test sender: logs each message and keeps the most recent ones in
    memory (the dev-only page /consent/dev/messages shows them). Not for production."""

    def __init__(self, keep: int = 200) -> None:
        self._lock = threading.Lock()
        self.sent: deque[tuple[datetime, Message]] = deque(maxlen=keep)

    def send(self, message: Message) -> None:
        log.warning("[%s to %s] %s: %s", message.channel, message.address, message.subject, message.body)
        print(f"\n[BayLink {message.channel} → {message.address}] {message.subject}\n{message.body}\n", flush=True)
        with self._lock:
            self.sent.append((datetime.now(UTC), message))

    def to(self, address: str) -> list[Message]:
        with self._lock:
            return [m for _, m in self.sent if m.address == address]

    def recent(self) -> Iterator[tuple[datetime, Message]]:
        with self._lock:
            return iter(list(reversed(self.sent)))


def enqueue(session: Session, dedupe_key: str, kind: str, recipient: str, payload: dict[str, Any],
            now: datetime | None = None) -> None:
    """Record a message to send, in the caller's transaction. The same ``dedupe_key`` twice
    records one message."""
    moment = now or datetime.now(UTC)
    values = {"dedupe_key": dedupe_key[:255], "kind": kind, "recipient": recipient, "payload": payload, "created": moment,
              "sent": False, "attempts": 0, "next_attempt": moment, "dead": False}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(OutboxMessage).values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"]))


def deliver(sessions: Callable[[], Session], sender: Sender, compose: Composer, *, now: datetime | None = None,
            batch: int = 100) -> tuple[int, int]:
    """Send the messages that are due. Returns (sent, failed). Each row is claimed and
    settled in its own short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two
    workers never send the same row and one bad message does not hold back the rest."""
    moment = now or datetime.now(UTC)
    sent = failed = 0
    due_now = (OutboxMessage.sent.is_(False), OutboxMessage.dead.is_(False), OutboxMessage.next_attempt <= moment)
    with sessions() as session:
        due = session.execute(
            select(OutboxMessage.pk).where(*due_now).order_by(OutboxMessage.pk).limit(batch)
        ).scalars().all()
    for pk in due:
        with sessions() as session, session.begin():
            # still due when claimed: another worker may have sent it, failed it (so it waits
            # for its next attempt) or given up on it since the list above was read
            row = session.execute(
                select(OutboxMessage).where(OutboxMessage.pk == pk, *due_now).with_for_update(skip_locked=True)
            ).scalar_one_or_none()
            if row is None:
                continue  # another worker has it, sent it, or it is no longer due
            attempts, kind = row.attempts + 1, row.kind
            try:
                # a savepoint: a database error while composing (which aborts a PostgreSQL
                # transaction) is undone on its own and recorded below as a failed attempt
                with session.begin_nested():
                    messages = compose(session, row)
                    for message in messages:
                        sender.send(message)
            except Exception as exc:
                session.execute(update(OutboxMessage).where(OutboxMessage.pk == pk).values(
                    attempts=attempts, last_error=f"{type(exc).__name__}: {exc}"[:2000],
                    next_attempt=moment + FIRST_RETRY * (2 ** (attempts - 1)), dead=attempts >= MAX_ATTEMPTS))
                log.warning("notification %s (%s) failed, attempt %d: %s", pk, kind, attempts, exc)
                failed += 1
                continue
            session.execute(update(OutboxMessage).where(OutboxMessage.pk == pk).values(
                sent=True, sent_at=moment, attempts=attempts,
                last_error=None if messages else "no contact on record for the recipient"))
            sent += 1
    return sent, failed
