"""Fixtures for the terminology tests: an engine per backend database and, per test, a
sessionmaker over emptied tables (these tests use the database directly, not the app)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fhir_exchange.store.db import make_engine, make_sessionmaker
from tests.terminology.support import wipe


@pytest.fixture(scope="session")
def term_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(term_engine: Engine) -> sessionmaker[Session]:
    """A sessionmaker over a database emptied for this test."""
    wipe(term_engine)
    return make_sessionmaker(term_engine)
