"""Property: a resource written is found by a search on each of its indexed values.

Hypothesis generates Patients and Observations; for every index entry the store extracted, the
test builds the search a client would send for that value and checks the resource comes back.
This ties write-time extraction, value normalisation and the SQL of each parameter type together.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_exchange.search import index as ix
from fhir_exchange.search.extract import extract

names = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzÀÉÖüßçñ陳大文黃李張 "), min_size=1, max_size=12).map(
    str.strip
).filter(bool)
codes = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-", min_size=1, max_size=10)
systems = st.sampled_from(["urn:hkid", "urn:mrn:qmh", "http://loinc.org", "urn:oid:2.16.840.1.113883.2.8"])
dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 12, 31))
decimals = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999"), places=2)


@st.composite
def patients(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": uuid.uuid4().hex[:16],
        "gender": draw(st.sampled_from(["male", "female", "other", "unknown"])),
        "birthDate": draw(dates).isoformat(),
        "name": [{"family": draw(names), "given": draw(st.lists(names, min_size=1, max_size=2))}],
        "identifier": [{"system": draw(systems), "value": draw(codes)}],
        "telecom": [{"system": "phone", "value": draw(codes)}],
        "address": [{"city": draw(names), "country": draw(st.sampled_from(["HK", "MO", "CN"]))}],
    }


@st.composite
def observations(draw: st.DrawFn) -> dict[str, Any]:
    moment = draw(dates)
    return {
        "resourceType": "Observation",
        "id": uuid.uuid4().hex[:16],
        "status": draw(st.sampled_from(["final", "preliminary", "amended"])),
        "code": {"coding": [{"system": "http://loinc.org", "code": draw(codes), "display": draw(names)}]},
        "subject": {"reference": f"Patient/{draw(codes)}"},
        "effectiveDateTime": f"{moment.isoformat()}T08:30:00+08:00",
        "valueQuantity": {"value": float(draw(decimals)), "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                          "code": "mmol/L"},
    }


def _query(entry: ix.IndexEntry) -> dict[str, str] | None:
    """The search a client would send to find ``entry``'s value."""
    match entry:
        case ix.StringEntry(param=p, exact=exact):
            return {f"{p}:exact": exact}
        case ix.TokenEntry(param=p, system=system, code=code) if code is not None:
            return {p: f"{system}|{code}" if system else code}
        case ix.DateEntry(param=p, low=low, high=high) if low.year == high.year:
            return {p: str(low.year)}
        case ix.ReferenceEntry(param=p, target_type=t, target_id=i) if t and i:
            return {p: f"{t}/{i}"}
        case ix.QuantityEntry(param=p, value=v) | ix.NumberEntry(param=p, value=v):
            return {p: f"{Decimal(str(v)):f}"}
        case ix.UriEntry(param=p, value=v):
            return {p: v}
    return None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("|", "\\|").replace("$", "\\$")


def _check_found(client, resource: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code in (200, 201), response.text
    entries = extract(response.json())
    assert entries, "the resource produced index entries"
    checked = 0
    for entry in entries:
        query = _query(entry)
        if query is None:
            continue
        if isinstance(entry, ix.StringEntry):
            query = {k: _escape(v) for k, v in query.items()}
        result = client.get(f"/fhir/{resource['resourceType']}", params={"_id": resource["id"], **query})
        assert result.status_code == 200, (query, result.text)
        assert result.json()["total"] == 1, (entry, query)
        checked += 1
    assert checked >= 5


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(resource=patients())
def test_patients_are_found_by_each_indexed_value(client, resource: dict[str, Any]) -> None:
    _check_found(client, resource)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(resource=observations())
def test_observations_are_found_by_each_indexed_value(client, resource: dict[str, Any]) -> None:
    _check_found(client, resource)
