"""IHE MHD over BayLink's FHIR API: ITI-65 Provide Document Bundle (a transaction with the
SubmissionSet List, the DocumentReference and the document as a Binary), ITI-67 Find Document
References and ITI-68 Retrieve Document — the document reaching another institution only
through the consent gate (the Binary is governed by the DocumentReference it belongs to)."""

from __future__ import annotations

import base64

from fhir_exchange.institutions.registry import load_registry
from tests.consent.test_gate_rest import _as, _consent, _grant, operator

PDF = b"%PDF-1.4\n% discharge summary of CHAN Tai Man\n"


def provide(client, headers: dict[str, str]) -> dict:  # type: ignore[no-untyped-def,type-arg]
    bundle = {"resourceType": "Bundle", "type": "transaction", "meta": {
        "profile": ["https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Minimal.ProvideBundle"]}, "entry": [
        {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111", "request": {"method": "POST", "url": "List"},
         "resource": {"resourceType": "List", "status": "current", "mode": "working",
                      "code": {"coding": [{"system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes",
                                           "code": "submissionset"}]},
                      "subject": {"reference": "Patient/p1"}, "date": "2026-11-20T10:00:00+08:00",
                      "entry": [{"item": {"reference": "urn:uuid:22222222-2222-4222-8222-222222222222"}}]}},
        {"fullUrl": "urn:uuid:22222222-2222-4222-8222-222222222222", "request": {"method": "POST", "url": "DocumentReference"},
         "resource": {"resourceType": "DocumentReference", "status": "current",
                      "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5", "display": "Discharge summary"}]},
                      "subject": {"reference": "Patient/p1"}, "date": "2026-11-20T10:00:00+08:00",
                      "content": [{"attachment": {"contentType": "application/pdf",
                                                  "url": "urn:uuid:33333333-3333-4333-8333-333333333333"}}]}},
        {"fullUrl": "urn:uuid:33333333-3333-4333-8333-333333333333", "request": {"method": "POST", "url": "Binary"},
         "resource": {"resourceType": "Binary", "contentType": "application/pdf",
                      "securityContext": {"reference": "urn:uuid:22222222-2222-4222-8222-222222222222"},
                      "data": base64.b64encode(PDF).decode()}},
    ]}
    response = client.post("/fhir", json=bundle, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_provide_find_and_retrieve_through_the_gate(app, anonymous_client) -> None:  # type: ignore[no-untyped-def]
    with operator(app) as service:
        load_registry(service)
    qmh, szh = _as(app, anonymous_client, "ha-queen-mary"), _as(app, anonymous_client, "hku-szh")
    patient = {"resourceType": "Patient", "id": "p1", "name": [{"family": "CHAN"}]}
    assert anonymous_client.put("/fhir/Patient/p1", json=patient, headers=qmh).status_code == 201
    result = provide(anonymous_client, qmh)
    locations = [e["response"]["location"] for e in result["entry"]]
    reference = next(loc for loc in locations if loc.startswith("DocumentReference/")).split("/_history")[0]
    binary = next(loc for loc in locations if loc.startswith("Binary/")).split("/_history")[0]

    found = anonymous_client.get("/fhir/DocumentReference", params={"patient": "Patient/p1", "status": "current"},
                                 headers=qmh).json()
    document = found["entry"][0]["resource"]
    assert document["content"][0]["attachment"]["url"].endswith(binary)  # the urn became the Binary's reference
    retrieved = anonymous_client.get(f"/fhir/{binary}", headers={**qmh, "Accept": "application/fhir+json"}).json()
    assert base64.b64decode(retrieved["data"]) == PDF

    # another institution: nothing without the patient's consent, neither the reference nor the document
    assert anonymous_client.get("/fhir/DocumentReference", params={"patient": "Patient/p1"}, headers=szh).json()["total"] == 0
    assert anonymous_client.get(f"/fhir/{reference}", headers=szh).status_code == 404
    assert anonymous_client.get(f"/fhir/{binary}", headers=szh).status_code == 404
    _consent(anonymous_client, qmh, _grant(["documents"]))
    assert anonymous_client.get(f"/fhir/{reference}", headers=szh).status_code == 200
    assert anonymous_client.get(f"/fhir/{binary}", headers=szh).status_code == 200
