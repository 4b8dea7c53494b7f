"""Fixtures for the operation tests.

The read-only tests share ``loaded_client``: an app of their own over a database of its own
per backend, migrated with Alembic and loaded once with every file of the starter manifest,
so they neither pay the ~1 s load per test nor touch the shared store that the ``app``
fixture empties before each test (they must not request ``app`` or ``client``). Tests that
write use ``fhir``: the ordinary ``client`` over the emptied shared store.

Both clients hold an access token with every scope (``system/*.cruds``, from the app's own
signer via ``tests.conftest.issue_token``) and check that every response with a body is
``application/fhir+json``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

import terminology.api
from baylink.app import create_app
from baylink.cli import OPERATOR_SCOPES
from baylink.migrate import upgrade
from baylink.settings import Settings
from fhir_exchange.ports import AllowAllGate, RequestContext
from fhir_exchange.service import FhirService
from fhir_exchange.store.db import make_engine, make_sessionmaker
from fhir_exchange.store.repository import FhirRepository
from fhir_exchange.terminology_sync import load_source
from terminology.loader import read_manifest
from tests.conftest import TEST_KEYS, _postgres_database, issue_token
from tests.fhir_exchange.operations.support import FHIR_JSON, MANIFEST


def _load_starter(database_url: str) -> None:
    """Every manifest file, one transaction each, opened as ``baylink/cli.py``'s ``_unit_of_work``
    opens it (an operator's context with full scopes, and the allow-all gate)."""
    engine = make_engine(database_url)
    try:
        sessions = make_sessionmaker(engine)
        for source in read_manifest(MANIFEST):
            context = RequestContext(request_id=str(uuid.uuid4()), client_id="operation-tests", purpose_of_use="HOPERAT",
                                     scopes=OPERATOR_SCOPES)
            with sessions() as session, session.begin():
                repository = FhirRepository(session, context, AllowAllGate())
                load_source(FhirService(repository, "http://testserver/fhir"), source)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def loaded_database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of its own with the starter terminology (PostgreSQL skips or fails exactly as
    the shared ``database_url`` does, through ``_postgres_database``)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    if backend == "sqlite":
        path: Path = tmp_path_factory.mktemp(f"operations-{worker}") / "terminology.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        _load_starter(url)
        yield url
        return
    for url in _postgres_database(f"baylink_ops_{worker}_{uuid.uuid4().hex[:8]}"):
        upgrade(url)
        _load_starter(url)
        yield url


def _check_media_type(response: httpx.Response) -> None:
    if response.status_code != 204 and response.headers.get("content-length") != "0":
        media = response.headers.get("content-type", "")
        assert media.split(";")[0].strip() == FHIR_JSON, (
            f"{response.request.method} {response.request.url} answered {response.status_code} as '{media}'"
        )


@pytest.fixture(scope="session")
def loaded_client(loaded_database_url: str) -> Iterator[TestClient]:
    # create_app points the process-wide terminology API at its own sessions; put back whatever
    # was configured before, so tests elsewhere in this process keep reading their database.
    previous = terminology.api.configured()
    application = create_app(Settings(environment="test", database_url=loaded_database_url, celery_eager=True,
                                      **TEST_KEYS))
    terminology.api._default = previous
    try:
        with TestClient(application, base_url="http://testserver") as test_client:
            test_client.headers["Accept"] = FHIR_JSON
            test_client.headers["Authorization"] = f"Bearer {issue_token(application)}"
            test_client.event_hooks["response"].append(_check_media_type)
            yield test_client
    finally:
        application.state.engine.dispose()


@pytest.fixture
def fhir(client: TestClient) -> Iterator[TestClient]:
    """The shared ``client`` (every scope) over the emptied store, checking media types."""
    client.event_hooks["response"].append(_check_media_type)
    yield client
    client.event_hooks["response"].remove(_check_media_type)
