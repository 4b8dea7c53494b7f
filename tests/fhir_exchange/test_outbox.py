"""The notification outbox (fhir_exchange/notify): a message is recorded exactly when the
transaction that causes it commits, once per dedupe key, and delivered at least once: sent
rows are not sent again, failures back off exponentially until the row is marked dead, and
two workers delivering at the same time never send the same row twice."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from fhir_exchange.notify.models import OutboxMessage
from fhir_exchange.notify.outbox import FIRST_RETRY, MAX_ATTEMPTS, Message, deliver, enqueue

T0 = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)


class Recording:
    """A sender that keeps what it sent; optionally slow, to widen the window of a race."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.sent: list[Message] = []
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        time.sleep(self.delay)
        with self._lock:
            self.sent.append(message)


class Failing:
    def __init__(self) -> None:
        self.calls = 0

    def send(self, message: Message) -> None:
        self.calls += 1
        raise ConnectionError("SMS gateway unreachable")


def compose(session: Session, row: OutboxMessage) -> list[Message]:
    return [Message("sms", row.recipient, row.kind, row.payload.get("text", ""), kind=row.kind)]


def nobody(session: Session, row: OutboxMessage) -> list[Message]:
    return []


def _enqueue(app, key: str, recipient: str = "Patient/p1", now: datetime = T0, **payload: str) -> None:  # type: ignore[no-untyped-def]
    with app.state.fhir.sessions() as session, session.begin():
        enqueue(session, key, "test", recipient, {"text": key, **payload}, now=now)


def _rows(app) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    with app.state.fhir.sessions() as session:
        return list(session.execute(select(OutboxMessage).order_by(OutboxMessage.pk)).scalars())


def test_the_same_dedupe_key_records_one_message(app) -> None:  # type: ignore[no-untyped-def]
    _enqueue(app, "request:Consent/1", text="first")
    _enqueue(app, "request:Consent/1", text="second")  # a re-run of whatever caused it
    with app.state.fhir.sessions() as session, session.begin():  # and twice in one transaction
        enqueue(session, "request:Consent/2", "test", "Patient/p1", {"text": "a"}, now=T0)
        enqueue(session, "request:Consent/2", "test", "Patient/p1", {"text": "b"}, now=T0)
    rows = _rows(app)
    assert [(r.dedupe_key, r.payload["text"]) for r in rows] == [("request:Consent/1", "first"), ("request:Consent/2", "a")]
    assert all(not r.sent and r.attempts == 0 and r.next_attempt == T0 and not r.dead for r in rows)


def test_a_message_of_a_transaction_that_rolls_back_does_not_exist(app) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError), app.state.fhir.sessions() as session, session.begin():
        enqueue(session, "rolled-back", "test", "Patient/p1", {"text": "never"}, now=T0)
        session.flush()
        raise RuntimeError("the change that caused it failed")
    assert _rows(app) == []
    sender = Recording()
    assert deliver(app.state.fhir.sessions, sender, compose, now=T0 + timedelta(days=1)) == (0, 0)
    assert sender.sent == []


def test_due_messages_are_sent_once_and_marked_sent(app) -> None:  # type: ignore[no-untyped-def]
    _enqueue(app, "a", "Patient/p1")
    _enqueue(app, "b", "Patient/p2")
    _enqueue(app, "later", "Patient/p3", now=T0 + timedelta(hours=1))  # not due yet at T0
    sender = Recording()
    assert deliver(app.state.fhir.sessions, sender, compose, now=T0) == (2, 0)
    assert [(m.address, m.body) for m in sender.sent] == [("Patient/p1", "a"), ("Patient/p2", "b")]
    rows = {r.dedupe_key: r for r in _rows(app)}
    for key in ("a", "b"):
        assert rows[key].sent and rows[key].sent_at == T0 and rows[key].attempts == 1 and rows[key].last_error is None
    assert not rows["later"].sent and rows["later"].attempts == 0

    assert deliver(app.state.fhir.sessions, sender, compose, now=T0 + timedelta(minutes=5)) == (0, 0)
    assert len(sender.sent) == 2  # nothing sent twice
    assert deliver(app.state.fhir.sessions, sender, compose, now=T0 + timedelta(hours=1)) == (1, 0)
    assert [m.body for m in sender.sent] == ["a", "b", "later"]


def test_a_failing_sender_backs_off_exponentially_then_gives_up(app) -> None:  # type: ignore[no-untyped-def]
    _enqueue(app, "flaky")
    sender = Failing()
    moment = T0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert deliver(app.state.fhir.sessions, sender, compose, now=moment) == (0, 1)
        (row,) = _rows(app)
        assert row.attempts == attempt and sender.calls == attempt
        assert row.last_error == "ConnectionError: SMS gateway unreachable"
        assert row.next_attempt == moment + FIRST_RETRY * 2 ** (attempt - 1)
        assert not row.sent
        assert row.dead == (attempt == MAX_ATTEMPTS)
        # not tried again before it is due
        assert deliver(app.state.fhir.sessions, sender, compose, now=row.next_attempt - timedelta(seconds=1)) == (0, 0)
        assert sender.calls == attempt
        moment = row.next_attempt
    # dead: left for an operator, never tried again
    assert deliver(app.state.fhir.sessions, sender, compose, now=moment + timedelta(days=365)) == (0, 0)
    assert sender.calls == MAX_ATTEMPTS


def test_a_message_that_failed_is_sent_when_the_sender_recovers(app) -> None:  # type: ignore[no-untyped-def]
    _enqueue(app, "flaky")
    assert deliver(app.state.fhir.sessions, Failing(), compose, now=T0) == (0, 1)
    sender = Recording()
    assert deliver(app.state.fhir.sessions, sender, compose, now=T0 + FIRST_RETRY) == (1, 0)
    (row,) = _rows(app)
    assert row.sent and row.attempts == 2 and row.last_error is None and not row.dead
    assert [m.body for m in sender.sent] == ["flaky"]


def test_no_one_to_tell_marks_the_message_sent_with_a_note(app) -> None:  # type: ignore[no-untyped-def]
    _enqueue(app, "no-phone")
    sender = Recording()
    assert deliver(app.state.fhir.sessions, sender, nobody, now=T0) == (1, 0)
    (row,) = _rows(app)
    assert row.sent and not row.dead
    assert row.last_error is not None and "no contact" in row.last_error
    assert sender.sent == []
    assert deliver(app.state.fhir.sessions, sender, nobody, now=T0 + timedelta(days=1)) == (0, 0)


def test_a_composer_failing_in_the_database_does_not_hold_back_the_rest(app) -> None:  # type: ignore[no-untyped-def]
    """A database error while composing (on PostgreSQL it aborts the transaction) counts as a
    failed attempt of that row; the rows after it are still sent."""
    _enqueue(app, "broken")
    _enqueue(app, "fine")

    def fragile(session: Session, row: OutboxMessage) -> list[Message]:
        if row.dedupe_key == "broken":
            session.execute(text("SELECT no_such_column FROM notification_outbox"))
        return compose(session, row)

    sender = Recording()
    assert deliver(app.state.fhir.sessions, sender, fragile, now=T0) == (1, 1)
    assert [m.body for m in sender.sent] == ["fine"]
    rows = {r.dedupe_key: r for r in _rows(app)}
    assert rows["fine"].sent
    assert not rows["broken"].sent and rows["broken"].attempts == 1
    assert rows["broken"].last_error and "no_such_column" in rows["broken"].last_error
    assert rows["broken"].next_attempt == T0 + FIRST_RETRY


def _after_listing(app, meanwhile):  # type: ignore[no-untyped-def]
    """A session factory for deliver() that lets another worker run ``meanwhile`` between
    this worker listing what is due and claiming the first row."""
    calls = 0

    def sessions() -> Session:
        nonlocal calls
        calls += 1
        if calls == 2:
            meanwhile()
        return app.state.fhir.sessions()

    return sessions


def test_a_row_another_worker_sent_meanwhile_is_not_sent_again(app) -> None:  # type: ignore[no-untyped-def]
    _enqueue(app, "once")
    other, this = Recording(), Recording()
    sessions = _after_listing(app, lambda: deliver(app.state.fhir.sessions, other, compose, now=T0))
    assert deliver(sessions, this, compose, now=T0) == (0, 0)
    assert len(other.sent) == 1 and this.sent == []


def test_a_row_another_worker_failed_meanwhile_waits_for_its_retry(app) -> None:  # type: ignore[no-untyped-def]
    _enqueue(app, "flaky")
    other, this = Failing(), Recording()
    sessions = _after_listing(app, lambda: deliver(app.state.fhir.sessions, other, compose, now=T0))
    assert deliver(sessions, this, compose, now=T0) == (0, 0)
    assert this.sent == []  # the other worker's failure set the next attempt 30 s ahead
    (row,) = _rows(app)
    assert row.attempts == 1 and row.next_attempt == T0 + FIRST_RETRY


def test_a_row_another_worker_gave_up_on_meanwhile_stays_dead(app) -> None:  # type: ignore[no-untyped-def]
    _enqueue(app, "hopeless")
    with app.state.fhir.sessions() as session, session.begin():
        session.execute(OutboxMessage.__table__.update().values(attempts=MAX_ATTEMPTS - 1))
    other, this = Failing(), Recording()
    sessions = _after_listing(app, lambda: deliver(app.state.fhir.sessions, other, compose, now=T0))
    assert deliver(sessions, this, compose, now=T0 + timedelta(days=1)) == (0, 0)
    assert this.sent == []
    (row,) = _rows(app)
    assert row.dead and row.attempts == MAX_ATTEMPTS


def test_concurrent_deliveries_never_send_a_row_twice(app) -> None:  # type: ignore[no-untyped-def]
    """Two workers at once (on PostgreSQL: FOR UPDATE SKIP LOCKED; on SQLite the write lock
    serialises them) share the due rows between them and send each exactly once."""
    keys = [f"m{n:02d}" for n in range(24)]
    for key in keys:
        _enqueue(app, key)
    sender = Recording(delay=0.02)
    start = threading.Barrier(3)
    results: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            results.append(deliver(app.state.fhir.sessions, sender, compose, now=T0))
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    counts = Counter(m.body for m in sender.sent)
    assert sorted(counts) == keys
    assert [k for k, n in counts.items() if n > 1] == []
    assert sum(sent for sent, _ in results) == len(keys) and all(failed == 0 for _, failed in results)
    assert all(r.sent and r.attempts == 1 for r in _rows(app))
    if app.state.engine.dialect.name == "postgresql":
        assert sum(1 for sent, _ in results if sent) >= 2  # the workers really did share the rows
