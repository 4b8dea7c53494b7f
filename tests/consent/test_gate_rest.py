"""The consent gate on BayLink's read paths, over REST: a leak matrix of consent states
against read, search, include, history and counts. Exactly the permitted resources come back;
totals reveal nothing withheld."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consent.policy import CROSS_BORDER_URL, DATA_CATEGORY, RECIPIENT_CLASS
from fhir_exchange.institutions.registry import load_registry
from fhir_exchange.ports import AllowAllGate, RequestContext
from fhir_exchange.service import FhirService
from fhir_exchange.store.repository import FhirRepository
from tests.conftest import issue_token

HKID = "http://baylink.example.org/fhir/sid/hkid"
PERMIT_SYSTEM = "http://baylink.example.org/fhir/sid/cn-travel-permit-hkmo"


@contextmanager
def operator(app) -> Iterator[FhirService]:  # type: ignore[no-untyped-def]
    context = RequestContext(request_id=str(uuid.uuid4()), client_id="test-operator", scopes=("system/*.cruds",))
    with app.state.fhir.sessions() as session, session.begin():
        yield FhirService(FhirRepository(session, context, AllowAllGate()), "http://testserver/fhir")


def _as(app, client: TestClient, institution: str, purpose: str = "TREAT", **headers: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": f"Bearer {issue_token(app, institution=institution, client_id=f'{institution}-his')}",
            "X-Purpose-Of-Use": purpose, **headers}


@pytest.fixture
def records(app, anonymous_client: TestClient) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    with operator(app) as service:
        load_registry(service)
    qmh = _as(app, anonymous_client, "ha-queen-mary")
    put = [
        {"resourceType": "Patient", "id": "p1", "identifier": [{"system": HKID, "value": "A123456(3)"},
                                                               {"system": PERMIT_SYSTEM, "value": "H12345678"}],
         "name": [{"family": "CHAN", "given": ["Tai Man"]}], "birthDate": "1950-03-04"},
        # coded, so the gate looks its codes up in terminology (while the request's transaction is open)
        {"resourceType": "Observation", "id": "o1", "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}], "text": "HbA1c"},
         "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-10-01"},
        {"resourceType": "Condition", "id": "c-psy", "subject": {"reference": "Patient/p1"}, "code": {"text": "depression"},
         "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]}},
        {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
         "medicationCodeableConcept": {"text": "metformin"}, "subject": {"reference": "Patient/p1"}},
        {"resourceType": "Patient", "id": "p2", "birthDate": "1960-01-01"},
        {"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "HbA1c"},
         "subject": {"reference": "Patient/p2"}, "effectiveDateTime": "2026-10-01"},
    ]
    for resource in put:
        response = anonymous_client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=qmh)
        assert response.status_code == 201, response.text
    # the same X-Request-ID on every call: the gate must still read consents afresh per request
    return {"qmh": qmh, "szh": _as(app, anonymous_client, "hku-szh", **{"X-Request-ID": "reused"}),
            "kw": _as(app, anonymous_client, "mo-kiang-wu"),
            "szh-pay": _as(app, anonymous_client, "hku-szh", "HPAYMT")}


def _consent(client: TestClient, headers: dict[str, str], provision: dict[str, Any], status: str = "active",
             cid: str = "consent-1") -> None:
    body = {"resourceType": "Consent", "id": cid, "status": status,
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/p1"}, "dateTime": "2026-11-01",
            "policy": [{"uri": "https://www.pcpd.org.hk/english/data_privacy_law/ordinance_at_a_Glance/ordinance.html"}],
            # recorded by the institution from the patient's signed form (an institution cannot
            # record an active consent without its evidence: consent/rules.py)
            "sourceAttachment": {"contentType": "application/pdf", "title": "signed consent form",
                                 "url": "https://records.example.org/forms/consent-1.pdf"},
            "provision": provision}
    response = client.put(f"/fhir/Consent/{cid}", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text


def _grant(categories: list[str], *, actor: dict[str, Any] | None = None, cross_border: bool = True,
           period: dict[str, str] | None = None, purpose: str | None = "TREAT", labels: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    provision: dict[str, Any] = {
        "type": "permit",
        "period": period or {"start": "2026-01-01", "end": "2027-06-30"},
        "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                        "code": "IRCP"}]},
                   "reference": actor or {"reference": "Organization/hku-szh"}}],
        "code": [{"coding": [{"system": DATA_CATEGORY, "code": c}]} for c in categories],
    }
    if purpose:
        provision["purpose"] = [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": purpose}]
    if cross_border:
        provision["extension"] = [{"url": CROSS_BORDER_URL, "valueBoolean": True}]
    if labels:
        provision["securityLabel"] = [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": c} for c in labels]
    return provision


def _visible(client: TestClient, headers: dict[str, str], *, custodian: bool = False) -> set[str]:
    """Everything of patient p1 the caller can see, by every read path, checking totals agree."""
    seen: set[str] = set()
    for resource_type in ("Observation", "Condition", "MedicationRequest"):
        bundle = client.get(f"/fhir/{resource_type}", params={"subject": "Patient/p1"}, headers=headers).json()
        ids = {e["resource"]["id"] for e in bundle.get("entry", [])}
        assert bundle["total"] == len(ids), (resource_type, bundle["total"], ids)
        count = client.get(f"/fhir/{resource_type}", params={"subject": "Patient/p1", "_summary": "count"}, headers=headers)
        assert count.json()["total"] == len(ids)
        seen |= ids
    for resource_type, rid in (("Observation", "o1"), ("Condition", "c-psy"), ("MedicationRequest", "m1"), ("Patient", "p1")):
        read = client.get(f"/fhir/{resource_type}/{rid}", headers=headers)
        assert (read.status_code == 200) == (rid in seen or (resource_type == "Patient" and read.status_code == 200))
        if read.status_code == 200:
            seen.add(rid)
        else:
            assert read.status_code == 404 and read.json()["resourceType"] == "OperationOutcome"
            assert read.json()["issue"][0]["diagnostics"] == f"{resource_type}/{rid} is not known"  # as if absent
        history = client.get(f"/fhir/{resource_type}/{rid}/_history", headers=headers)
        assert (history.status_code == 200) == (rid in seen)  # a history none of which it may see: as if absent
        if history.status_code == 200:
            assert history.json()["total"] == len(history.json().get("entry", [])) > 0
        else:
            assert history.status_code == 404
            assert history.json()["issue"][0]["diagnostics"] == f"{resource_type}/{rid} is not known"
    included = client.get("/fhir/Observation", params={"_id": "o1", "_include": "Observation:subject"}, headers=headers).json()
    assert {e["resource"]["id"] for e in included.get("entry", [])} <= seen
    if not custodian:
        assert client.get("/fhir/Observation/o2", headers=headers).status_code == 404  # another patient, no consent
    return seen


def test_the_custodian_sees_everything_it_holds(anonymous_client: TestClient, records) -> None:  # type: ignore[no-untyped-def]
    assert _visible(anonymous_client, records["qmh"], custodian=True) == {"o1", "c-psy", "m1", "p1"}


@pytest.mark.parametrize(("state", "expected"), [
    ("none", set()),
    ("results", {"o1"}),
    ("results and demographics", {"o1", "p1"}),
    ("results, problems and mental health", {"o1", "c-psy"}),
    ("problems without naming mental health", set()),
    ("expired", set()),
    ("not yet begun", set()),
    ("withdrawn", set()),
    ("draft", set()),
    ("wrong purpose", set()),
    ("not cross-border", set()),
    ("for another institution", set()),
    ("for designated voucher service points", {"o1", "m1"}),
    ("deny medicines inside a broad permit", {"o1"}),
])
def test_leak_matrix(anonymous_client: TestClient, records, state: str, expected: set[str]) -> None:  # type: ignore[no-untyped-def]
    qmh = records["qmh"]
    grants = {
        "results": _grant(["results"]),
        "results and demographics": _grant(["results", "demographics"]),
        "results, problems and mental health": _grant(["results", "problems"], labels=["PSY"]),
        "problems without naming mental health": _grant(["problems"]),
        "expired": _grant(["results"], period={"start": "2025-01-01", "end": "2025-12-31"}),
        "not yet begun": _grant(["results"], period={"start": "2027-01-01"}),
        "withdrawn": _grant(["results"]),
        "draft": _grant(["results"]),
        "wrong purpose": _grant(["results"], purpose="HPAYMT"),
        "not cross-border": _grant(["results"], cross_border=False),
        "for another institution": _grant(["results"], actor={"reference": "Organization/shenzhen-peoples"}),
        "for designated voucher service points": _grant(["results", "medications"],
                                                        actor={"identifier": {"system": RECIPIENT_CLASS,
                                                                              "value": "designated:ehcv"}}),
        "deny medicines inside a broad permit": {**_grant(["results", "medications"]), "provision": [
            {"type": "deny", "code": [{"coding": [{"system": DATA_CATEGORY, "code": "medications"}]}]}]},
    }
    if state != "none":
        _consent(anonymous_client, qmh, grants[state], status="draft" if state == "draft" else "active")
    if state == "withdrawn":
        assert _visible(anonymous_client, records["szh"]) == {"o1"}  # before: granted
        _consent(anonymous_client, qmh, grants[state], status="inactive")  # withdrawn: the very next request sees it
    assert _visible(anonymous_client, records["szh"]) == expected
    assert _visible(anonymous_client, records["kw"]) == set()  # Macao was never granted anything


def test_a_patient_released_across_the_boundary_is_masked(anonymous_client: TestClient, records) -> None:  # type: ignore[no-untyped-def]
    _consent(anonymous_client, records["qmh"], _grant(["demographics"]))
    patient = anonymous_client.get("/fhir/Patient/p1", headers=records["szh"]).json()
    assert patient["identifier"] == [{"system": PERMIT_SYSTEM, "value": "H12345678"}]  # the HKID stays in Hong Kong
    assert {"code": "MASKED"}.items() <= patient["meta"]["security"][-1].items()
    own = anonymous_client.get("/fhir/Patient/p1", headers=records["qmh"]).json()
    assert len(own["identifier"]) == 2


def test_the_server_sets_the_custodian(anonymous_client: TestClient, records) -> None:  # type: ignore[no-untyped-def]
    forged = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/p1"},
              "meta": {"tag": [{"system": "http://baylink.example.org/fhir/CodeSystem/custodian", "code": "ha-queen-mary"}]}}
    created = anonymous_client.post("/fhir/Observation", json=forged, headers=records["szh"]).json()
    assert created["meta"]["tag"] == [{"system": "http://baylink.example.org/fhir/CodeSystem/custodian", "code": "hku-szh"}]
    # Queen Mary's own update of its record keeps it Queen Mary's
    updated = anonymous_client.put("/fhir/Observation/o1", headers=records["szh"], json={
        "resourceType": "Observation", "id": "o1", "status": "amended", "code": {"text": "HbA1c"},
        "subject": {"reference": "Patient/p1"}})
    assert updated.status_code in (200, 403)  # the write may pass; it cannot take the record over
    stored = anonymous_client.get("/fhir/Observation/o1", headers=records["qmh"]).json()
    assert stored["meta"]["tag"][0]["code"] == "ha-queen-mary"


def test_break_glass_releases_emergency_data_only_with_a_reason(app, anonymous_client: TestClient, records) -> None:  # type: ignore[no-untyped-def]
    from fhir_exchange.auth.keys import generate_private_key_pem, on_behalf_of, public_jwks
    from fhir_exchange.auth.service import ClientRegistry

    pem = generate_private_key_pem()
    with app.state.fhir.sessions() as session, session.begin():
        client_id = ClientRegistry(session).register("hku-szh", public_jwks(pem), "system/*.cruds").client_id
    token = issue_token(app, institution="hku-szh", client_id=client_id)
    er_doctor = on_behalf_of(client_id, pem, "http://testserver/fhir", "PractitionerRole/er-1", ["break-glass"])
    nurse = on_behalf_of(client_id, pem, "http://testserver/fhir", "PractitionerRole/n-1", ["nurse"])
    base = {"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "ETREAT"}
    reason = {"X-Break-Glass-Reason": "unconscious after a road accident"}
    glass = {**base, "X-On-Behalf-Of": er_doctor, **reason}
    assert anonymous_client.get("/fhir/MedicationRequest/m1", headers=glass).status_code == 200
    assert anonymous_client.get("/fhir/Observation/o1", headers=glass).status_code == 200  # a recent result
    assert anonymous_client.get("/fhir/Condition/c-psy", headers=glass).status_code == 404  # sensitive stays closed
    assert anonymous_client.get("/fhir/MedicationRequest/m1", headers={**base, "X-On-Behalf-Of": er_doctor}).status_code == 404
    as_nurse = {**base, "X-On-Behalf-Of": nurse, **reason}
    assert anonymous_client.get("/fhir/MedicationRequest/m1", headers=as_nurse).status_code == 404
    assert anonymous_client.get("/fhir/MedicationRequest/m1", headers={**base, **reason}).status_code == 404
    events = anonymous_client.get("/fhir/AuditEvent", params={"patient": "Patient/p1", "_count": 100},
                                  headers=records["qmh"] | {"X-Purpose-Of-Use": "TREAT"}).json()
    purposes = [e["resource"]["purposeOfEvent"][0] for e in events.get("entry", [])]
    assert {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "ETREAT"}],
            "text": "unconscious after a road accident"} in purposes


def test_ended_consents_are_marked_inactive_by_the_beat_job(anonymous_client: TestClient, records, settings,
                                                           monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from baylink import worker
    from baylink.settings import get_settings

    _consent(anonymous_client, records["qmh"], _grant(["results"], period={"start": "2025-01-01", "end": "2025-12-31"}),
             cid="ended")
    _consent(anonymous_client, records["qmh"], _grant(["results"]), cid="current")
    monkeypatch.setenv("BAYLINK_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        assert worker.expire_consents.apply().get() == ["ended"]
        assert worker.expire_consents.apply().get() == []  # safe to run twice
    finally:
        get_settings.cache_clear()
    statuses = {cid: anonymous_client.get(f"/fhir/Consent/{cid}", headers=records["qmh"]).json()["status"]
                for cid in ("ended", "current")}
    assert statuses == {"ended": "inactive", "current": "active"}
    assert _visible(anonymous_client, records["szh"]) == {"o1"}


def test_a_deletion_is_told_only_to_who_may_see_the_record(app, anonymous_client: TestClient, records) -> None:  # type: ignore[no-untyped-def]
    """A deleted record answers 410 Gone to those who could see it, and 404 (as if it had never
    existed) to the others, on read, vread and history: that it existed is the record's to tell."""
    _consent(anonymous_client, records["qmh"], _grant(["results"]))
    assert anonymous_client.delete("/fhir/Observation/o1", headers=records["qmh"]).status_code in (200, 204)
    for who, code in (("qmh", 410), ("szh", 410), ("kw", 404), ("szh-pay", 404)):
        read = anonymous_client.get("/fhir/Observation/o1", headers=records[who])
        assert read.status_code == code, (who, read.text)
        tombstone = anonymous_client.get("/fhir/Observation/o1/_history/2", headers=records[who])
        assert tombstone.status_code == code, (who, tombstone.text)
        if code == 404:
            assert read.json()["issue"][0]["diagnostics"] == "Observation/o1 is not known"
        history = anonymous_client.get("/fhir/Observation/_history", headers=records[who]).json()
        entries = [(e["request"]["method"], e["request"]["url"]) for e in history.get("entry", [])]
        assert (("DELETE", "Observation/o1") in entries) == (code == 410), (who, entries)
        assert history["total"] == len(entries)


def _qmh_holds(client: TestClient, records, *resources: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    for resource in resources:
        response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=records["qmh"])
        assert response.status_code == 201, response.text


def _lab(rid: str, identifier: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final", "code": {"text": "HbA1c"},
            "identifier": [{"system": "urn:lab", "value": identifier}], "subject": {"reference": "Patient/p1"}}


def test_a_conditional_interaction_matches_only_what_the_caller_may_see(anonymous_client: TestClient, records) -> None:  # type: ignore[no-untyped-def]
    """To If-None-Exist, conditional update and delete, and a transaction's conditional
    references, a record the caller may not see does not exist: no status tells of it."""
    client, szh, qmh = anonymous_client, records["szh"], records["qmh"]
    hkid = f"{HKID}|A123456(3)"
    patient = {"resourceType": "Patient", "identifier": [{"system": HKID, "value": "A123456(3)"}], "birthDate": "1950-03-04"}

    # If-None-Exist: Queen Mary's p1 is not Shenzhen's to find, so Shenzhen's record is created
    created = client.post("/fhir/Patient", json=patient, headers={**szh, "If-None-Exist": f"identifier={hkid}"})
    assert created.status_code == 201, created.text
    assert created.json()["id"] != "p1" and created.json()["meta"]["tag"][0]["code"] == "hku-szh"
    # the same again finds Shenzhen's own record, only that (not a 412 for two)
    again = client.post("/fhir/Patient", json=patient, headers={**szh, "If-None-Exist": f"identifier={hkid}"})
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]
    # Queen Mary still finds both only if it may see both: its own, not Shenzhen's
    own = client.post("/fhir/Patient", json=patient, headers={**qmh, "If-None-Exist": f"identifier={hkid}"})
    assert own.status_code == 200 and own.json()["id"] == "p1"

    # a conditional update that would have found Queen Mary's result (403 before) writes Shenzhen's own
    updated = client.put("/fhir/Observation", params={"code": "4548-4", "subject": "Patient/p1"}, headers=szh,
                         json={"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"},
                               "subject": {"reference": "Patient/p1"}})
    assert updated.status_code == 201, updated.text
    assert updated.json()["id"] != "o1"
    # a conditional delete finds nothing of Queen Mary's to delete, nor two matches to refuse
    deleted = client.delete("/fhir/Observation", params={"subject": "Patient/p2"}, headers=szh)
    assert deleted.status_code == 204, deleted.text
    assert client.get("/fhir/Observation/o2", headers=qmh).status_code == 200
    assert client.delete("/fhir/Observation", params={"status": "final"}, headers=records["kw"]).status_code == 204
    assert client.get("/fhir/Observation/o1", headers=qmh).status_code == 200

    # a transaction's conditional reference does not resolve to what the caller may not see
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                     "subject": {"reference": "Patient?birthdate=1960-01-01"}},
        "request": {"method": "POST", "url": "Observation"}}]}
    refused = client.post("/fhir", json=bundle, headers=szh)
    assert refused.status_code == 412, refused.text
    assert "matches no resource" in refused.json()["issue"][0]["diagnostics"]
    resolved = client.post("/fhir", json=bundle, headers=qmh)
    assert resolved.status_code == 200, resolved.text

    # under consent, Shenzhen may see the result, so it is found (and is Queen Mary's to change)
    _consent(client, qmh, _grant(["results"]))
    found = client.post("/fhir/Observation", headers={**szh, "If-None-Exist": "code=4548-4&subject=Patient/p1&_id=o1"},
                        json={"resourceType": "Observation", "status": "final", "code": {"text": "x"}})
    assert found.status_code == 200 and found.json()["id"] == "o1"
    assert client.delete("/fhir/Observation", params={"_id": "o1"}, headers=szh).status_code == 403


def test_a_transactions_conditional_updates_match_only_what_the_caller_may_see(anonymous_client: TestClient, records,
                                                                               monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The conditional updates a transaction looks up together (HL7 ingest's shape) are gated as
    one on its own: where the caller may see none of the first matches, it looks further (here
    one candidate at a time, so that it must read on past each withheld one)."""
    from fhir_exchange.store import repository

    monkeypatch.setattr(repository, "_MATCH_CHUNK", 1)
    client, szh = anonymous_client, records["szh"]
    _qmh_holds(client, records, _lab("q1", "L-1"), _lab("q2", "L-1"), _lab("q3", "L-2"))
    mine = client.put("/fhir/Observation/s1", json=_lab("s1", "L-1"), headers=szh)
    assert mine.status_code == 201, mine.text

    def transaction(*values: str) -> list[str]:
        entries = [{"resource": {**_lab("ignored", value), "status": "amended"},
                    "request": {"method": "PUT", "url": f"Observation?identifier=urn:lab|{value}"}} for value in values]
        for entry in entries:
            del entry["resource"]["id"]
        response = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries},
                               headers=szh)
        assert response.status_code == 200, response.text
        return [e["resource"]["id"] + " " + e["response"]["status"][:3] for e in response.json()["entry"]]

    # L-1: Queen Mary's q1 and q2 fill the first look (two), both withheld; Shenzhen's s1 is found after them.
    # L-2: only Queen Mary's q3 matches: withheld, so Shenzhen's result is created, not refused.
    outcome = transaction("L-1", "L-2")
    assert outcome[0] == "s1 200"
    assert outcome[1].split()[0] not in ("q3", "s1") and outcome[1].endswith("201")
    for rid in ("q1", "q2", "q3"):
        stored = client.get(f"/fhir/Observation/{rid}", headers=records["qmh"]).json()
        assert stored["status"] == "final" and stored["meta"]["versionId"] == "1"
