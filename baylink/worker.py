"""The Celery app. ``make run`` runs tasks eagerly in-process (BAYLINK_CELERY_EAGER=true);
docker-compose runs a worker and beat against Redis."""

from __future__ import annotations

from celery import Celery

from baylink.settings import get_settings


def make_celery() -> Celery:
    settings = get_settings()
    app = Celery("baylink", broker=settings.broker_url, include=[])
    app.conf.update(
        task_always_eager=settings.celery_eager,
        task_eager_propagates=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        timezone="UTC",
        enable_utc=True,
        broker_connection_retry_on_startup=True,
    )
    return app


celery_app = make_celery()
