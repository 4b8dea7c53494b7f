"""Real FHIR clients against the running server: fhirpy and fhirclient."""

from __future__ import annotations

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.searchset import Raw


@pytest.fixture
def fhirpy_client(live_server: str, live_token: str) -> SyncFHIRClient:
    return SyncFHIRClient(live_server, authorization=f"Bearer {live_token}")


def test_fhirpy_create_read_update(fhirpy_client: SyncFHIRClient) -> None:
    patient = fhirpy_client.resource("Patient", name=[{"family": "陳", "given": ["大文"]}], gender="male")
    patient.save()
    assert patient.id and patient["meta"]["versionId"] == "1"
    patient["birthDate"] = "1950-03-04"
    patient.save()
    fetched = fhirpy_client.reference("Patient", patient.id).to_resource()
    assert fetched["birthDate"] == "1950-03-04" and fetched["meta"]["versionId"] == "2"
    fetched.refresh()  # fhirpy sends If-None-Match with the bare version
    assert fetched["meta"]["versionId"] == "2"


def test_fhirpy_conditional_create(fhirpy_client: SyncFHIRClient) -> None:
    identifier = [{"system": "urn:baylink:hkid", "value": "A1234563"}]
    first = fhirpy_client.resource("Patient", identifier=identifier)
    first.create(identifier="urn:baylink:hkid|A1234563")
    second = fhirpy_client.resource("Patient", identifier=identifier)
    second.create(identifier="urn:baylink:hkid|A1234563")
    assert first.id == second.id
    _, created = fhirpy_client.resources("Patient").search(identifier="urn:baylink:hkid|A1234563").get_or_create(
        fhirpy_client.resource("Patient", identifier=identifier)
    )
    assert created is False
    assert len(fhirpy_client.resources("Patient").fetch_all()) == 1


def test_fhirpy_search_chain_include_revinclude(fhirpy_client: SyncFHIRClient) -> None:
    patient = fhirpy_client.resource(
        "Patient", identifier=[{"system": "urn:mrn", "value": "P1"}], name=[{"family": "Lam"}]
    )
    patient.save()
    other = fhirpy_client.resource("Patient", identifier=[{"system": "urn:mrn", "value": "P2"}])
    other.save()
    for subject, value in ((patient, 5.4), (patient, 7.1), (other, 6.0)):
        fhirpy_client.resource(
            "Observation", status="final",
            code={"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            subject=subject.to_reference(), valueQuantity={"value": value, "unit": "%"},
        ).save()

    chained = fhirpy_client.resources("Observation").search(Raw(**{"subject:Patient.identifier": "urn:mrn|P1"}))
    assert len(chained.fetch_all()) == 2

    bundle = fhirpy_client.resources("Observation").search(patient=patient.id).include("Observation", "subject")
    raw = bundle.fetch_raw()
    modes = sorted(e["search"]["mode"] for e in raw["entry"])
    assert modes == ["include", "match", "match"]

    rev = fhirpy_client.resources("Patient").search(_id=patient.id).revinclude("Observation", "subject").fetch_raw()
    assert sorted(e["resource"]["resourceType"] for e in rev["entry"]) == ["Observation", "Observation", "Patient"]

    has = fhirpy_client.resources("Patient").has("Observation", "subject", **{"value-quantity": "gt7"}).fetch_all()
    assert [p.id for p in has] == [patient.id]


def test_fhirpy_paging_fetch_all(fhirpy_client: SyncFHIRClient) -> None:
    for i in range(23):
        fhirpy_client.resource("Patient", name=[{"family": f"Family{i:02d}"}]).save()
    everyone = fhirpy_client.resources("Patient").sort("family").limit(5).fetch_all()
    assert [p["name"][0]["family"] for p in everyone] == [f"Family{i:02d}" for i in range(23)]


def test_fhirpy_transaction(fhirpy_client: SyncFHIRClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:0c1f5e2e-0000-4000-8000-000000000001",
             "resource": {"resourceType": "Patient", "name": [{"family": "Ho"}]},
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"},
                          "subject": {"reference": "urn:uuid:0c1f5e2e-0000-4000-8000-000000000001"}},
             "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    response = fhirpy_client.execute("", method="post", data=bundle)
    assert response["type"] == "transaction-response"
    assert [e["response"]["status"] for e in response["entry"]] == ["201 Created", "201 Created"]
    observation = fhirpy_client.resources("Observation").first()
    patient_id = response["entry"][0]["response"]["location"].split("/")[1]
    assert observation["subject"]["reference"] == f"Patient/{patient_id}"


def test_fhirclient_metadata_read_search(live_server: str, live_token: str) -> None:
    from fhirclient import client as fc_client
    from fhirclient.models.capabilitystatement import CapabilityStatement
    from fhirclient.models.patient import Patient

    smart = fc_client.FHIRClient(settings={"app_id": "baylink-test", "api_base": live_server})
    smart.server.session.headers["Authorization"] = f"Bearer {live_token}"
    smart.prepare()  # fetches /metadata and parses it with the strict R4 model
    statement = CapabilityStatement.read_from("metadata", smart.server)
    assert statement.fhirVersion == "4.0.1"

    created = Patient({"name": [{"family": "Leong", "given": ["Ka Wai"]}], "gender": "female"})
    result = created.create(smart.server)
    patient_id = result["id"]
    patient = Patient.read(patient_id, smart.server)
    assert patient.name[0].family == "Leong"
    found = Patient.where(struct={"family": "leo"}).perform_resources(smart.server)
    assert [p.id for p in found] == [patient_id]
