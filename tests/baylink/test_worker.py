"""The Celery task that purges expired search snapshots: eagerly, and through a real Redis broker."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from baylink import settings as settings_module
from baylink import worker
from fhir_exchange.store.db import make_engine

REDIS_URL = os.environ.get("BAYLINK_TEST_REDIS_URL", "")
REQUIRE_REDIS = os.environ.get("BAYLINK_TEST_REQUIRE_POSTGRES") == "1"  # CI provides both servers


def _snapshots(database_url: str, ages: list[timedelta]) -> None:
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM search_snapshot"))
        for n, age in enumerate(ages):
            conn.execute(
                text("INSERT INTO search_snapshot (id, created, res_type, query, total, pks) "
                     "VALUES (:id, :created, 'Patient', '', 0, '[]')"),
                {"id": f"s{n}", "created": (now - age).replace(tzinfo=None) if engine.dialect.name == "sqlite"
                 else now - age},
            )
    engine.dispose()


def _remaining(database_url: str) -> list[str]:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        ids = sorted(conn.execute(text("SELECT id FROM search_snapshot")).scalars())
    engine.dispose()
    return ids


@pytest.fixture
def configured(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BAYLINK_DATABASE_URL", database_url)
    settings_module.get_settings.cache_clear()
    yield database_url
    settings_module.get_settings.cache_clear()


def test_purge_runs_eagerly_and_twice_safely(configured: str) -> None:
    _snapshots(configured, [timedelta(minutes=5), timedelta(hours=2), timedelta(days=1)])
    assert worker.purge_search_snapshots.apply().get() == 2
    assert worker.purge_search_snapshots.apply().get() == 0
    assert _remaining(configured) == ["s0"]


def test_purge_through_the_redis_broker(configured: str) -> None:
    if not REDIS_URL:
        if REQUIRE_REDIS:
            pytest.fail("CI must set BAYLINK_TEST_REDIS_URL")
        pytest.skip("Redis not configured (set BAYLINK_TEST_REDIS_URL); .ci/run always sets it")
    from celery.contrib.testing.worker import start_worker

    app = worker.celery_app
    saved = dict(app.conf)
    app.conf.update(broker_url=REDIS_URL, task_always_eager=False)
    _snapshots(configured, [timedelta(hours=3), timedelta(minutes=1)])
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            worker.purge_search_snapshots.delay()  # through Redis to the worker; no result backend needed
            deadline = time.monotonic() + 30
            while _remaining(configured) != ["s1"] and time.monotonic() < deadline:
                time.sleep(0.2)
    finally:
        app.conf.update(saved)
    assert _remaining(configured) == ["s1"]
