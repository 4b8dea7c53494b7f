"""Patient/[id]/$everything: the Patient and its compartment, filtered by _type and _since, paged
with _count, limited by the token's scopes, and released through the real consent gate
(whose totals reveal nothing withheld)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_exchange.institutions.registry import load_registry
from fhir_exchange.operations.everything import LEFT_OUT, REFERENCED_TYPES, compartment
from fhir_exchange.search.registry import registry
from fhir_exchange.store.repository import fhir_instant
from tests.conftest import issue_token
from tests.consent.test_gate_rest import HKID, _as, _consent, _grant, operator
from tests.fhir_exchange.operations.support import ok, outcome, parameters

P1 = "Patient/p1"
CHART = [
    {"resourceType": "Organization", "id": "org1", "name": "Clinic"},
    {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Wong"}]},
    {"resourceType": "Patient", "id": "p1", "name": [{"family": "CHAN", "given": ["Tai Man"]}], "birthDate": "1950-03-04",
     "managingOrganization": {"reference": "Organization/org1"}},
    {"resourceType": "Patient", "id": "p2", "name": [{"family": "LEE", "given": ["Siu Ming"]}], "birthDate": "1971-07-01"},
    {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "HbA1c"}, "subject": {"reference": P1},
     "performer": [{"reference": "Practitioner/dr1"}]},
    {"resourceType": "Condition", "id": "c1", "subject": {"reference": P1}, "code": {"text": "diabetes"}},
    {"resourceType": "Encounter", "id": "e1", "status": "finished", "subject": {"reference": P1},
     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}},
    {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
     "medicationCodeableConcept": {"text": "metformin"}, "subject": {"reference": P1}},
    {"resourceType": "AllergyIntolerance", "id": "a1", "patient": {"reference": P1}, "code": {"text": "penicillin"}},
    # p2's, but p1 performed it (self-measured for a relative): in p1's compartment by Observation.performer
    {"resourceType": "Observation", "id": "o3", "status": "final", "code": {"text": "glucose"},
     "subject": {"reference": "Patient/p2"}, "performer": [{"reference": P1}]},
    {"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "HbA1c"},
     "subject": {"reference": "Patient/p2"}},
]
P1_COMPARTMENT = {P1, "Observation/o1", "Condition/c1", "Encounter/e1", "MedicationRequest/m1", "AllergyIntolerance/a1",
                  "Observation/o3"}


def _put(client: TestClient, resource: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


@pytest.fixture
def chart(client: TestClient) -> TestClient:
    for resource in CHART:
        _put(client, resource)
    return client


def _everything(client: TestClient, patient: str = "p1", headers: dict[str, str] | None = None,
                **params: Any) -> dict[str, Any]:
    bundle = ok(client.get(f"/fhir/Patient/{patient}/$everything", params=params, headers=headers), "Bundle")
    assert bundle["type"] == "searchset"
    return bundle


def _refs(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])
            if e["search"]["mode"] == mode]


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == relation), None)


def test_the_compartment_definition_names_parameters_baylink_indexes() -> None:
    table = compartment()
    assert {"Observation", "Condition", "Encounter", "MedicationRequest", "AllergyIntolerance", "Consent"} <= set(table)
    assert table["Observation"] == ("subject", "performer")
    assert table["Patient"] == ("link",)
    assert not set(LEFT_OUT) & set(table)
    for resource_type, params in table.items():
        for param in params:
            definition = registry().get(resource_type, param)
            assert definition is not None and "Patient" in definition.target, (resource_type, param)


def test_the_patient_and_everything_in_its_compartment(chart: TestClient) -> None:
    bundle = _everything(chart)
    matches = _refs(bundle)
    assert matches[0] == P1
    assert len(matches) == len(set(matches))
    assert set(matches) == P1_COMPARTMENT  # not p2 nor p2's own Observation o2
    assert bundle["total"] == len(P1_COMPARTMENT)
    # what they refer to that belongs to no patient comes along as includes, not counted in total
    assert set(_refs(bundle, "include")) == {"Practitioner/dr1", "Organization/org1"}
    # the requests above were audited, with p1 as the patient; the audit trail is not part of it
    assert not [e for e in bundle["entry"] if e["resource"]["resourceType"] == "AuditEvent"]
    assert ok(chart.get("/fhir/AuditEvent", params={"patient": P1}), "Bundle")["total"] > 0
    entry = bundle["entry"][0]
    assert entry["fullUrl"] == "http://testserver/fhir/Patient/p1"
    assert _link(bundle, "self") == "http://testserver/fhir/Patient/p1/$everything"
    assert _link(bundle, "next") is None
    assert set(_refs(_everything(chart, "p2"))) == {"Patient/p2", "Observation/o2", "Observation/o3"}


def test_type_filters_what_comes_back(chart: TestClient) -> None:
    bundle = _everything(chart, _type="Observation,Condition")
    assert set(_refs(bundle)) == {"Observation/o1", "Observation/o3", "Condition/c1"}
    assert bundle["total"] == 3
    assert _refs(bundle, "include") == []  # Practitioner was not asked for
    repeated = chart.get("/fhir/Patient/p1/$everything", params=[("_type", "Observation"), ("_type", "Practitioner")])
    body = ok(repeated, "Bundle")
    assert set(_refs(body)) == {"Observation/o1", "Observation/o3"}
    assert _refs(body, "include") == ["Practitioner/dr1"]
    assert set(_refs(_everything(chart, _type="Patient"))) == {P1}
    assert "Nope" in outcome(chart.get("/fhir/Patient/p1/$everything", params={"_type": "Observation,Nope"}), 400)
    assert "AuditEvent?patient" in outcome(chart.get("/fhir/Patient/p1/$everything", params={"_type": "AuditEvent"}), 400)


def test_since_returns_only_what_changed(chart: TestClient) -> None:
    time.sleep(0.05)
    since = fhir_instant(datetime.now(UTC))
    time.sleep(0.05)
    _put(chart, {**CHART[4], "status": "amended"})
    _put(chart, {"resourceType": "Observation", "id": "o4", "status": "final", "code": {"text": "LDL"},
                 "subject": {"reference": P1}})
    bundle = _everything(chart, _since=since)
    assert set(_refs(bundle)) == {"Observation/o1", "Observation/o4"}
    assert bundle["total"] == 2
    assert "_since=" in _link(bundle, "self")  # type: ignore[operator]
    assert _everything(chart, _since=fhir_instant(datetime.now(UTC).replace(year=2000)))["total"] == len(P1_COMPARTMENT) + 1
    assert "_since" in outcome(chart.get("/fhir/Patient/p1/$everything", params={"_since": "yesterday"}), 400)


def test_post_takes_a_parameters_resource(chart: TestClient) -> None:
    body = parameters({"name": "_type", "valueString": "Observation"}, {"name": "_count", "valueInteger": 10},
                      {"name": "_since", "valueInstant": "2000-01-01T00:00:00Z"}, {"name": "start", "valueDate": "2020-01-01"})
    bundle = ok(chart.post("/fhir/Patient/p1/$everything", json=body), "Bundle")
    assert set(_refs(bundle)) == {"Observation/o1", "Observation/o3"}
    assert "Observation/o2" not in _refs(bundle)


def test_paging_with_count_gives_each_resource_once(chart: TestClient) -> None:
    bundle = _everything(chart, _count=3)
    assert bundle["total"] == len(P1_COMPARTMENT)
    seen, sizes = [], []
    while True:
        sizes.append(len(_refs(bundle)))
        seen += _refs(bundle)
        assert bundle["total"] == len(P1_COMPARTMENT)
        url = _link(bundle, "next")
        if url is None:
            break
        assert url.startswith("http://testserver/fhir/Patient/p1/$everything?_getpages=")
        bundle = ok(chart.get(url.removeprefix("http://testserver")), "Bundle")
    assert sizes == [3, 3, 1]
    assert len(seen) == len(set(seen)) and set(seen) == P1_COMPARTMENT
    assert _link(bundle, "previous") is not None and _link(bundle, "first") is not None
    assert "entry" not in _everything(chart, _count=0) and _everything(chart, _count=0)["total"] == len(P1_COMPARTMENT)


def test_a_saved_result_is_paged_only_by_its_caller_through_the_operation(app, chart: TestClient) -> None:  # type: ignore[no-untyped-def]
    url = _link(_everything(chart, _count=2), "next")
    assert url is not None
    path = url.removeprefix("http://testserver")
    snapshot = dict(item.split("=", 1) for item in path.split("?", 1)[1].split("&"))["_getpages"]
    # search paging checks one type's scope; this result mixes types, so it refuses it
    outcome(chart.get("/fhir", params={"_getpages": snapshot}), 400)
    # another token of the same institution, with other scopes: its own total might differ
    other = {"Authorization": f"Bearer {issue_token(app, 'system/*.rs')}"}
    outcome(chart.get(path, headers=other), 410)  # the repository serves a saved result to its caller only
    outcome(chart.get(path.replace("/Patient/p1/", "/Patient/p2/")), 404)
    assert "_offset" in outcome(chart.get(path + "&_type=Observation"), 400)


def test_types_outside_the_tokens_scopes_are_left_out(app, chart: TestClient) -> None:  # type: ignore[no-untyped-def]
    narrow = {"Authorization": f"Bearer {issue_token(app, 'system/Patient.rs system/Observation.rs')}"}
    bundle = _everything(chart, headers=narrow)
    assert set(_refs(bundle)) == {P1, "Observation/o1", "Observation/o3"}
    assert bundle["total"] == 3
    assert _refs(bundle, "include") == []  # no Practitioner or Organization scope
    no_patient = {"Authorization": f"Bearer {issue_token(app, 'system/Observation.rs')}"}
    assert "Patient" in outcome(chart.get("/fhir/Patient/p1/$everything", headers=no_patient), 403)


def test_unknown_deleted_and_type_level(chart: TestClient) -> None:
    outcome(chart.get("/fhir/Patient/nobody/$everything"), 404)
    assert chart.delete("/fhir/Patient/p2").status_code == 204
    outcome(chart.get("/fhir/Patient/p2/$everything"), 410)
    assert "[id]/$everything" in outcome(chart.get("/fhir/Patient/$everything"), 404)


def test_the_capability_statement_lists_it_on_patient(client: TestClient) -> None:
    statement = ok(client.get("/fhir/metadata"), "CapabilityStatement")
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    everything = {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}
    assert everything in patient["operation"]


# --- through the consent gate (the app's own: custodian sees its records, others need consent) -------


@pytest.fixture
def records(app, anonymous_client: TestClient) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    """p1's records held by Queen Mary (Hong Kong), as tests/consent/test_gate_rest.py makes them; the
    callers: Queen Mary, HKU-Shenzhen (mainland) and Kiang Wu (Macao)."""
    with operator(app) as service:
        load_registry(service)
    qmh = _as(app, anonymous_client, "ha-queen-mary")
    for resource in [
        {"resourceType": "Patient", "id": "p1", "identifier": [{"system": HKID, "value": "A123456(3)"}],
         "name": [{"family": "CHAN", "given": ["Tai Man"]}], "birthDate": "1950-03-04"},
        {"resourceType": "Observation", "id": "o1", "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}], "text": "HbA1c"},
         "subject": {"reference": P1}, "effectiveDateTime": "2026-10-01"},
        {"resourceType": "Condition", "id": "c-psy", "subject": {"reference": P1}, "code": {"text": "depression"},
         "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]}},
        {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
         "medicationCodeableConcept": {"text": "metformin"}, "subject": {"reference": P1}},
        {"resourceType": "Patient", "id": "p2", "birthDate": "1960-01-01"},
        {"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "HbA1c"},
         "subject": {"reference": "Patient/p2"}, "effectiveDateTime": "2026-10-01"},
    ]:
        _put(anonymous_client, resource, qmh)
    return {"qmh": qmh, "szh": _as(app, anonymous_client, "hku-szh"), "kw": _as(app, anonymous_client, "mo-kiang-wu")}


def test_without_consent_another_institution_gets_nothing(anonymous_client: TestClient, records) -> None:  # type: ignore[no-untyped-def]
    for caller in ("szh", "kw"):
        read = anonymous_client.get("/fhir/Patient/p1", headers=records[caller])
        response = anonymous_client.get("/fhir/Patient/p1/$everything", headers=records[caller])
        # answered exactly as read answers a Patient it withholds: as one that does not exist
        assert response.status_code == read.status_code == 404 and response.json() == read.json()
        assert response.json()["resourceType"] == "OperationOutcome" and "Observation" not in response.text


def test_a_consent_releases_its_categories_and_total_counts_only_those(anonymous_client: TestClient,
                                                                     records) -> None:  # type: ignore[no-untyped-def]
    _consent(anonymous_client, records["qmh"], _grant(["results", "demographics"]))
    bundle = _everything(anonymous_client, headers=records["szh"])
    assert _refs(bundle) == [P1, "Observation/o1"]  # not the Condition (mental health), medicines, the Consent, p2's
    assert bundle["total"] == len(bundle["entry"]) == 2
    patient = bundle["entry"][0]["resource"]
    assert all(i["system"] != HKID for i in patient.get("identifier", []))  # masked across the boundary
    # paged, the total stays what was released, and the pages give exactly that
    paged = _everything(anonymous_client, headers=records["szh"], _count=1)
    assert paged["total"] == 2 and _link(paged, "next") is not None
    following = ok(anonymous_client.get(_link(paged, "next").removeprefix("http://testserver"),  # type: ignore[union-attr]
                                        headers=records["szh"]), "Bundle")
    assert _refs(paged) + _refs(following) == [P1, "Observation/o1"] and _link(following, "next") is None
    # audited as what was released: the AuditEvent names o1 and not what was withheld
    events = ok(anonymous_client.get("/fhir/AuditEvent", params={"patient": P1, "_count": 200}, headers=records["qmh"]),
                "Bundle")
    released = [{e["what"]["reference"] for e in event["resource"]["entity"] if "what" in e}
                for event in events["entry"]
                if event["resource"]["subtype"][0]["code"] == "operation"
                and {"reference": "Organization/hku-szh"} in [a["who"] for a in event["resource"]["agent"]]]
    assert len(released) == 3  # the whole result, then its two pages
    assert released[0] == {P1, "Observation/o1/_history/1"} and set().union(*released) == released[0]


def test_a_consent_without_demographics_does_not_release_the_patient(anonymous_client: TestClient,
                                                                     records) -> None:  # type: ignore[no-untyped-def]
    _consent(anonymous_client, records["qmh"], _grant(["results"]))
    assert anonymous_client.get("/fhir/Observation/o1", headers=records["szh"]).status_code == 200
    response = anonymous_client.get("/fhir/Patient/p1/$everything", headers=records["szh"])
    assert response.status_code == 404 and "Observation" not in response.text  # $everything starts from the Patient


def test_the_custodian_gets_all_it_holds(anonymous_client: TestClient, records) -> None:  # type: ignore[no-untyped-def]
    _consent(anonymous_client, records["qmh"], _grant(["results"]))
    bundle = _everything(anonymous_client, headers=records["qmh"])
    assert set(_refs(bundle)) == {P1, "Observation/o1", "Condition/c-psy", "MedicationRequest/m1", "Consent/consent-1"}
    assert bundle["total"] == 5


def test_referenced_types_are_not_patient_specific() -> None:
    assert not set(REFERENCED_TYPES) & set(compartment())
