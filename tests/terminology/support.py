"""Helpers for the terminology tests: the starter files by name, loading them the way the
CLI does (one transaction per file through ``load_source``), and row counts."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect, text
from sqlalchemy.orm import Session

from fhir_exchange.ports import AllowAllGate, RequestContext
from fhir_exchange.service import FhirService
from fhir_exchange.store.repository import FhirRepository
from fhir_exchange.terminology_sync import load_source
from terminology.loader import Source, read_manifest
from terminology.service import TerminologyService
from terminology.store import SaveResult, TerminologyStore
from tests.conftest import ROOT, TABLES

CONTENT = ROOT / "terminology" / "content"
MANIFEST = CONTENT / "manifest.json"
STARTER: dict[str, Source] = {s.path.name: s for s in read_manifest(MANIFEST)}

ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_CN = "http://baylink.example.org/fhir/sid/icd-10-cn-clinical"
LOINC = "http://loinc.org"
HK_LAB = "http://baylink.example.org/fhir/CodeSystem/hk-example-lab"
CN_LAB = "http://baylink.example.org/fhir/CodeSystem/cn-example-lab"
UCUM = "http://unitsofmeasure.org"
DERIVED_EXTENSION = "http://baylink.example.org/fhir/StructureDefinition/designation-derived-by"

TERM_TABLES = [t for t in TABLES if t.startswith("term_")]
# What a terminology load may write: its own tables and the FHIR store's resource tables.
LOAD_TABLES = [*TERM_TABLES, "resource", "resource_version"]

Sessions = Callable[[], Session]


def starter(name: str, **meta: Any) -> Source:
    """A starter file as its manifest entry describes it (a fresh copy; ``meta`` overrides)."""
    source = STARTER[name]
    return Source(source.path, source.kind, {**source.meta, **meta})


def csv_source(path: Path, kind: str = "CodeSystem", **meta: Any) -> Source:
    return Source(path, kind, dict(meta))


def write_csv(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text(body, encoding="utf-8")
    return path


def wipe(engine: Engine) -> None:
    """Empty every table of the schema (the ones the migrated database has)."""
    existing = set(inspect(engine).get_table_names())
    tables = [t for t in TABLES if t in existing]
    with engine.begin() as conn:  # DELETE, children first: far quicker than TRUNCATE on small tables
        for table in tables:
            conn.execute(text(f"DELETE FROM {table}"))


@contextmanager
def unit_of_work(sessions: Sessions) -> Iterator[tuple[FhirService, Session]]:
    """One transaction with an operator's FhirService, as ``baylink terminology load`` opens."""
    context = RequestContext(request_id=str(uuid.uuid4()), client_id="terminology-tests", purpose_of_use="HOPERAT",
                             scopes=("system/*.cruds",))
    with sessions() as session, session.begin():
        yield FhirService(FhirRepository(session, context, AllowAllGate()), "http://testserver/fhir"), session


def load(sessions: Sessions, *sources: Source) -> list[SaveResult]:
    """Load each source in a transaction of its own; the results of all of them."""
    results: list[SaveResult] = []
    for source in sources:
        with unit_of_work(sessions) as (service, _):
            results += load_source(service, source)
    return results


def load_starter(sessions: Sessions, *names: str) -> list[SaveResult]:
    return load(sessions, *(starter(name) for name in names))


def counts(sessions: Sessions, tables: list[str] = LOAD_TABLES) -> dict[str, int]:
    with sessions() as session:
        return {t: session.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in tables}


def resource_rows(sessions: Sessions, resource_type: str) -> list[tuple[str, int, bool]]:
    """(id, current version, deleted) of every stored resource of a type."""
    with sessions() as session:
        return [tuple(r) for r in session.execute(
            text("SELECT res_id, version_id, deleted FROM resource WHERE res_type = :t ORDER BY res_id"),
            {"t": resource_type},
        ).all()]


def stored_resource(sessions: Sessions, resource_type: str, resource_id: str) -> dict[str, Any]:
    with unit_of_work(sessions) as (service, _):
        return service.repo.read(resource_type, resource_id).content


def term_loads(sessions: Sessions) -> list[tuple[str, str, str]]:
    """(kind, url, version) of every term_load row, oldest first."""
    with sessions() as session:
        return [tuple(r) for r in session.execute(text("SELECT kind, url, version FROM term_load ORDER BY pk")).all()]


@contextmanager
def terminology_service(sessions: Sessions) -> Iterator[TerminologyService]:
    with sessions() as session:
        yield TerminologyService(TerminologyStore(session))
