"""The search index rows a write leaves are exactly what ``extract`` gives, however they go in
(an INSERT per table, or COPY on PostgreSQL),
awkward text included; a database error while they go in is SQLAlchemy's, as any
statement's, and an over-long value is refused, never cut."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError

from fhir_exchange.ports import AllowAllGate, RequestContext
from fhir_exchange.search import index as ix
from fhir_exchange.search.extract import extract
from fhir_exchange.service import FhirService
from fhir_exchange.store.models import INDEX_TABLES, ResourceRow, TokenIndex
from fhir_exchange.store.repository import _INDEX_INSERTS, FhirRepository, _DeferredRows

AWKWARD = "tab\there\nnew line \\ back\\slash \\N 中文 'quote' \"double\" ,;|"


def _service(session) -> FhirService:  # type: ignore[no-untyped-def]
    context = RequestContext(request_id=str(uuid.uuid4()), client_id="test", institution="hosp-a",
                             scopes=("system/*.cruds",))
    return FhirService(FhirRepository(session, context, AllowAllGate()), "http://testserver/fhir")


SKIPPED = ("id", "resource_pk", "res_type")


def _rows(session, pk: int) -> list[tuple]:  # type: ignore[no-untyped-def]
    """(table, sorted (column, value) pairs) of every index row of ``pk``."""
    found = []
    for table in INDEX_TABLES:
        columns = [c for c in table.__table__.columns if c.name not in SKIPPED]
        for row in session.execute(select(*columns).where(table.__table__.c.resource_pk == pk)):
            found.append((table.__tablename__, tuple(sorted((c.name, v) for c, v in zip(columns, row, strict=True)))))
    return sorted(found, key=repr)


def _expected(document: dict) -> list[tuple]:
    tables = {ix.StringEntry: "idx_string", ix.TokenEntry: "idx_token", ix.DateEntry: "idx_date",
              ix.ReferenceEntry: "idx_reference", ix.QuantityEntry: "idx_quantity", ix.NumberEntry: "idx_number",
              ix.UriEntry: "idx_uri"}
    return sorted(((tables[type(entry)], tuple(sorted((name, getattr(entry, name)) for name in entry.__slots__)))
                   for entry in extract(document)), key=repr)


def test_index_rows_are_what_extract_gives(app) -> None:  # type: ignore[no-untyped-def]
    observation = {
        "resourceType": "Observation", "status": "final",
        "identifier": [{"system": "http://example.org/ids", "value": AWKWARD}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": AWKWARD}], "text": AWKWARD},
        "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-24T09:30:00+08:00",
        "valueQuantity": {"value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        "note": [{"text": AWKWARD}],
    }
    assessment = {"resourceType": "RiskAssessment", "status": "final", "subject": {"reference": "Patient/p1"},
                  "prediction": [{"probabilityDecimal": 0.25}]}
    measure = {"resourceType": "Measure", "status": "active", "url": "http://example.org/Measure/m1", "name": AWKWARD}
    with app.state.fhir.sessions() as session, session.begin():
        service = _service(session)
        written = [service.create(d["resourceType"], d).stored for d in (observation, assessment, measure)]
    kinds = set()
    with app.state.fhir.sessions() as session:
        for stored in written:
            assert stored is not None
            content = session.execute(select(ResourceRow.content).where(ResourceRow.pk == stored.pk)).scalar_one()
            rows = _rows(session, stored.pk)
            assert rows and rows == _expected(content)
            kinds |= {table for table, _ in rows}
    assert kinds >= {"idx_string", "idx_token", "idx_date", "idx_reference", "idx_quantity", "idx_number", "idx_uri"}


def test_an_error_while_index_rows_go_in_is_sqlalchemys(app) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IntegrityError), app.state.fhir.sessions() as session, session.begin():
        connection = session.connection()
        _DeferredRows.of(connection).add(_INDEX_INSERTS[TokenIndex], [{
            "resource_pk": 987654321, "res_type": "Observation", "param": "code", "system": "http://x", "code": "y",
            "text": None, "type_system": None, "type_code": None}])  # no such resource: the foreign key refuses it
        session.execute(select(ResourceRow.pk).limit(1))  # any statement puts pending rows in first


def test_an_over_long_value_is_refused_not_cut(app) -> None:  # type: ignore[no-untyped-def]
    param = "p" * 150  # the column is VARCHAR(100)
    row = {"resource_pk": None, "res_type": "Observation", "param": param, "system": "http://x", "code": "y",
           "text": None, "type_system": None, "type_code": None}
    postgres = app.state.engine.dialect.name == "postgresql"
    with app.state.fhir.sessions() as session, session.begin():
        service = _service(session)
        stored = service.create("Observation", {"resourceType": "Observation", "status": "final",
                                                "code": {"text": "x"}}).stored
        assert stored is not None
        session.flush()
        _DeferredRows.of(session.connection()).add(_INDEX_INSERTS[TokenIndex], [{**row, "resource_pk": stored.pk}])
        if postgres:
            with pytest.raises(DataError):
                session.execute(select(ResourceRow.pk).limit(1))
            session.rollback()
        else:  # SQLite keeps VARCHAR(n) whole
            session.execute(select(ResourceRow.pk).limit(1))
            kept = session.execute(select(TokenIndex.param).where(TokenIndex.resource_pk == stored.pk,
                                                                  TokenIndex.system == "http://x")).scalar_one()
            assert kept == param
