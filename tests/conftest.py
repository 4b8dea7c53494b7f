"""Shared fixtures: the same suite runs against SQLite and PostgreSQL.

- ``backend`` is parametrised over ``sqlite`` and ``postgresql``. PostgreSQL runs when
  ``BAYLINK_TEST_POSTGRES_URL`` names a server; with ``BAYLINK_TEST_REQUIRE_POSTGRES=1``
  (as ``.ci/run`` sets) a missing or unreachable server fails the run instead of skipping.
- Each backend's schema is built once per session with the Alembic migrations (never
  ``create_all``) in a database of its own, and emptied between tests.
- ``client`` is an in-process HTTP client; ``live_server`` a real uvicorn server on a free
  port for real FHIR clients (fhirpy, fhirclient, TestScripts).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from baylink.app import create_app
from baylink.migrate import METADATA, upgrade
from baylink.settings import Settings
from fhir_exchange.auth.tokens import generate_key_pem
from fhir_exchange.crypto import new_key

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
POSTGRES_URL = os.environ.get("BAYLINK_TEST_POSTGRES_URL", "")
REQUIRE_POSTGRES = os.environ.get("BAYLINK_TEST_REQUIRE_POSTGRES") == "1"
# Keys made once per test process, so every app a test builds seals, signs and blinds alike
# (and nothing is written under var/).
TEST_KEYS = {
    "token_signing_key": generate_key_pem().decode(),
    "identifier_keys": f"test1:{new_key()}",
    "identifier_key_id": "test1",
    "blind_index_key": new_key(),
}
# The CLI, run from tests, reads its keys from the environment: the same ones.
for _name, _value in TEST_KEYS.items():
    os.environ[f"BAYLINK_{_name.upper()}"] = _value
TABLES = [t.name for metadata in METADATA for t in reversed(metadata.sorted_tables)]


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared/{'/'.join(parts)} is not present beside this checkout")
    return path


def _postgres_database(tmp_name: str) -> Iterator[str]:
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("BAYLINK_TEST_REQUIRE_POSTGRES=1 but BAYLINK_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL not configured (set BAYLINK_TEST_POSTGRES_URL); .ci/run always sets it")
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{tmp_name}"'))
    except Exception as exc:
        admin.dispose()
        message = f"cannot create a test database on {POSTGRES_URL}: {exc}"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    url = make_url(POSTGRES_URL).set(database=tmp_name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{tmp_name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    if backend == "sqlite":
        path = tmp_path_factory.mktemp(f"sqlite-{worker}") / "baylink.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url
        return
    name = f"baylink_test_{worker}_{uuid.uuid4().hex[:8]}"
    for url in _postgres_database(name):
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(environment="test", database_url=database_url, celery_eager=True, **TEST_KEYS)


@pytest.fixture(scope="session")
def app(settings: Settings):  # type: ignore[no-untyped-def]
    application = create_app(settings)
    yield application
    application.state.engine.dispose()
    application.state.reader_engine.dispose()


@pytest.fixture(autouse=True)
def _empty_database(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests that use the app start from an empty store."""
    if "app" not in request.fixturenames:
        yield
        return
    application = request.getfixturevalue("app")
    engine = application.state.engine
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))
    yield


TEST_INSTITUTION = "test-hospital"
TEST_CLIENT = "test-client"


def issue_token(app, scope: str = "system/*.cruds", *, institution: str = TEST_INSTITUTION,  # type: ignore[no-untyped-def]
                client_id: str = TEST_CLIENT, lifetime: timedelta = timedelta(hours=6)) -> str:
    """An access token from the app's own signer, as /auth/token would issue it (the SMART
    exchange itself is tested in tests/fhir_exchange/auth). Long-lived, for test sessions."""
    return app.state.fhir.signer.issue(client_id, institution, scope, lifetime=lifetime).token


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """An in-process client holding a token with every scope (system/*.cruds)."""
    with TestClient(app, base_url="http://testserver") as test_client:
        test_client.headers["Accept"] = "application/fhir+json"
        test_client.headers["Authorization"] = f"Bearer {issue_token(app)}"
        yield test_client


@pytest.fixture
def anonymous_client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """An in-process client without a token."""
    with TestClient(app, base_url="http://testserver") as test_client:
        test_client.headers["Accept"] = "application/fhir+json"
        yield test_client


@pytest.fixture(scope="session")
def live_token(app) -> str:  # type: ignore[no-untyped-def]
    return issue_token(app)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A real HTTP server on loopback; yields the FHIR base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}/fhir"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/metadata", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        pytest.fail("the live server did not start")
    yield base
    server.should_exit = True
    thread.join(timeout=10)
