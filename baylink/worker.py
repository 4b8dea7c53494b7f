"""The Celery app. ``make run`` runs tasks eagerly in-process (BAYLINK_CELERY_EAGER=true);
docker-compose runs a worker and beat against Redis.

Tasks take ids or nothing as arguments, reload what they need, and are safe to run twice.
"""

from __future__ import annotations

from datetime import timedelta

from celery import Celery

from baylink.settings import get_settings
from fhir_exchange.store.db import make_engine, make_sessionmaker
from fhir_exchange.store.repository import purge_expired_snapshots


def make_celery() -> Celery:
    settings = get_settings()
    app = Celery("baylink", broker=settings.broker_url)
    app.conf.update(
        task_always_eager=settings.celery_eager,
        task_eager_propagates=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        timezone="UTC",
        enable_utc=True,
        broker_connection_retry_on_startup=True,
        beat_schedule={
            "purge-search-snapshots": {"task": "baylink.purge_search_snapshots", "schedule": timedelta(minutes=15)},
            "expire-consents": {"task": "baylink.expire_consents", "schedule": timedelta(hours=1)},
            "warn-expiring-consents": {"task": "baylink.warn_expiring_consents", "schedule": timedelta(hours=6)},
            "deliver-notifications": {"task": "baylink.deliver_notifications", "schedule": timedelta(minutes=1)},
            "flag-overdue-referrals": {"task": "baylink.flag_overdue_referrals", "schedule": timedelta(minutes=15)},
            "voucher-annual-credit": {"task": "baylink.voucher_annual_credit", "schedule": timedelta(hours=1)},
            "voucher-rewards": {"task": "baylink.voucher_rewards", "schedule": timedelta(hours=1)},
        },
    )
    return app


celery_app = make_celery()


@celery_app.task(name="baylink.purge_search_snapshots")
def purge_search_snapshots() -> int:
    """Remove expired search result snapshots (they back the paging links for an hour)."""
    engine = make_engine(get_settings().database_url)
    try:
        with make_sessionmaker(engine)() as session, session.begin():
            return purge_expired_snapshots(session)
    finally:
        engine.dispose()


@celery_app.task(name="baylink.expire_consents")
def expire_consents() -> list[str]:
    """Mark Consents whose period has ended inactive (consent/expiry.py)."""
    from consent.expiry import expire_consents as expire

    return _over_consents(expire)


@celery_app.task(name="baylink.warn_expiring_consents")
def warn_expiring_consents() -> list[str]:
    """Tell patients of consents ending within two weeks (consent/expiry.py)."""
    from consent.expiry import warn_expiring

    ids = _over_consents(warn_expiring)
    deliver_notifications.delay()
    return ids


@celery_app.task(name="baylink.flag_overdue_referrals")
def flag_overdue_referrals() -> list[str]:
    """Flag and escalate referrals not accepted within their time (referral/sla.py)."""
    from datetime import UTC, datetime

    from referral.sla import flag_overdue, parse_sla

    sla = parse_sla(get_settings().referral_sla)
    ids = _over_consents(lambda service, _today: flag_overdue(service, datetime.now(UTC), sla), scopes=("system/Task.rus",))
    deliver_notifications.delay()
    return ids


@celery_app.task(name="baylink.voucher_annual_credit")
def voucher_annual_credit() -> int:
    """The year's voucher credit, capped at the accumulation limit (referral/voucher/tasks.py)."""
    from referral.voucher.tasks import credit_annual

    return _voucher_batches(credit_annual)


@celery_app.task(name="baylink.voucher_rewards")
def voucher_rewards() -> tuple[int, int]:
    """Voucher rewards earned, and rewards past their last day expired (referral/voucher/tasks.py)."""
    from referral.voucher.tasks import credit_rewards, expire_rewards

    return _voucher_batches(credit_rewards), _voucher_batches(expire_rewards)


def _voucher_batches(job) -> int:  # type: ignore[no-untyped-def]
    """Run ``job`` a transaction per batch until it has nothing left to do, on Hong Kong's today."""
    from datetime import UTC, datetime

    from referral.voucher.claims import hong_kong_day
    from referral.voucher.rules import default_rules

    engine = make_engine(get_settings().database_url)
    now, total = datetime.now(UTC), 0
    try:
        while True:
            with make_sessionmaker(engine)() as session, session.begin():
                done = job(session, default_rules(), hong_kong_day(now), now)
            total += done
            if done == 0:
                return total
    finally:
        engine.dispose()


def _over_consents(job, scopes=("system/Consent.rus",)):  # type: ignore[no-untyped-def]
    import uuid
    from datetime import UTC, datetime

    from fhir_exchange.ports import AllowAllGate, RequestContext
    from fhir_exchange.service import FhirService
    from fhir_exchange.store.repository import FhirRepository

    engine = make_engine(get_settings().database_url)
    context = RequestContext(request_id=str(uuid.uuid4()), client_id="baylink-worker", purpose_of_use="HOPERAT",
                             scopes=tuple(scopes))
    try:
        with make_sessionmaker(engine)() as session, session.begin():
            service = FhirService(FhirRepository(session, context, AllowAllGate()), get_settings().public_base_url)
            return job(service, datetime.now(UTC).date())
    finally:
        engine.dispose()


@celery_app.task(name="baylink.deliver_notifications", bind=True, max_retries=None)
def deliver_notifications(self) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Send what the outbox holds that is due (fhir_exchange/notify/outbox.py); each message
    backs off on its own, so the task itself is never retried."""
    from fhir_exchange.notify.outbox import deliver
    from referral.notices import compose

    engine = make_engine(get_settings().database_url)
    try:
        return deliver(make_sessionmaker(engine), _sender(), compose)
    finally:
        engine.dispose()


_SENDER = None


def _sender():  # type: ignore[no-untyped-def]
    """The worker's sender: the console (its log) until a gateway is configured."""
    global _SENDER
    if _SENDER is None:
        from fhir_exchange.notify.outbox import ConsoleSender

        _SENDER = ConsoleSender()
    return _SENDER


_RUNTIME = None


def _runtime():  # type: ignore[no-untyped-def]
    """The FHIR runtime the worker applies ingest jobs with: the same gate and write rules as the API."""
    global _RUNTIME
    if _RUNTIME is None:
        from baylink.app import create_app

        _RUNTIME = create_app(get_settings()).state.fhir
    return _RUNTIME


@celery_app.task(name="baylink.ingest_job", bind=True, acks_late=True, max_retries=5)
def ingest_job(self, job_id: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """Apply a batch's queued items (fhir_exchange/ingest/receive.py: each item its own
    transaction; input errors fail the item, database trouble is retried per item and leaves
    a dead letter after five tries). Retried with back-off while items stay queued."""
    from fhir_exchange.ingest.receive import run_job

    settings = get_settings()
    status = run_job(_runtime(), job_id, settings.public_base_url or f"http://{settings.host}:{settings.port}/fhir")
    if status["queued"]:
        raise self.retry(countdown=min(600, 10 * 2 ** self.request.retries))
    return status
