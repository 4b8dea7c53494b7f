"""FHIR input from other profiles (POST /ingest/fhir): IPS document bundles are stored whole and
as their resources; codes gain the shared coding and three-language displays; identity
documents come under BayLink's systems; unknown extensions stay; a resend writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import issue_token, shared_path
from tests.terminology.support import load_starter

HKID = "http://baylink.example.org/fhir/sid/hkid"
ICD10_CN = "http://baylink.example.org/fhir/sid/icd-10-cn-clinical"


def _headers(app, institution: str = "ha-queen-mary") -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": f"Bearer {issue_token(app, institution=institution)}",
            "Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


@pytest.mark.parametrize("name", ["Bundle-IPS-examples-Bundle-01.json", "Bundle-bundle-ips-all-sections.json",
                                  "Bundle-bundle-minimal.json"])
def test_ips_documents_are_stored_whole_and_as_their_resources(client, app, name: str) -> None:  # type: ignore[no-untyped-def]
    data = shared_path("corpora", "ips-examples", name).read_bytes()
    stored = client.post("/ingest/fhir", content=data, headers=_headers(app))
    assert stored.status_code == 201, stored.text
    written = [e["response"]["location"].split("/")[0] for e in stored.json()["entry"]]
    document = json.loads(data)
    assert written.count("Bundle") == 1 and "Composition" in written and "Provenance" in written
    assert len(written) == len(document["entry"]) + 3  # + the document, its original, the Provenance
    again = client.post("/ingest/fhir", content=data, headers=_headers(app))
    assert again.status_code == 200  # recognised: nothing written again, the same locations answered
    assert [e["response"]["location"] for e in again.json()["entry"]] == [e["response"]["location"]
                                                                         for e in stored.json()["entry"]]


def test_codes_identifiers_and_extensions(client, app) -> None:  # type: ignore[no-untyped-def]
    load_starter(app.state.fhir.sessions, "icd10-who.csv", "icd10-cn-clinical.csv", "icd10-cn-to-who.csv")
    rows = Path("terminology/content/icd10-cn-to-who.csv").read_text(encoding="utf-8").splitlines()
    icd_cn = next(line.split(",")[0] for line in rows if line[0].isalpha() and not line.startswith("source"))
    collection = {"resourceType": "Bundle", "type": "collection", "identifier": {"system": "urn:example:feed", "value": "42"},
                  "entry": [
                      {"fullUrl": "http://other.example/fhir/Patient/x1", "resource": {
                          "resourceType": "Patient", "id": "x1",
                          "identifier": [{"system": "http://www.immd.gov.hk/hkid", "value": "a1234563"}],
                          "extension": [{"url": "http://other.example/ext/favourite-colour", "valueString": "jade"}]}},
                      {"fullUrl": "http://other.example/fhir/Condition/c1", "resource": {
                          "resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/x1"},
                          "code": {"coding": [{"system": ICD10_CN, "code": icd_cn}]}}}]}
    stored = client.post("/ingest/fhir", content=json.dumps(collection), headers=_headers(app))
    assert stored.status_code == 201, stored.text
    locations = {e["response"]["location"].split("/")[0]: e["response"]["location"] for e in stored.json()["entry"]}
    patient = client.get("/fhir/" + locations["Patient"].split("/_history")[0], headers=_headers(app)).json()
    condition = client.get("/fhir/" + locations["Condition"].split("/_history")[0], headers=_headers(app)).json()
    assert [(i["system"], i["value"]) for i in patient["identifier"]] == [(HKID, "A123456(3)")]  # alias → BayLink's
    assert patient["extension"][0]["valueString"] == "jade"  # unknown extensions stay
    assert condition["subject"]["reference"] == f"Patient/{patient['id']}"
    systems = [c["system"] for c in condition["code"]["coding"]]
    assert systems[0] == ICD10_CN and "http://hl7.org/fhir/sid/icd-10" in systems
    shared = next(c for c in condition["code"]["coding"] if c["system"] == "http://hl7.org/fhir/sid/icd-10")
    assert shared["userSelected"] is False
    original = condition["code"]["coding"][0]
    languages = {e["extension"][0]["valueCode"] for e in (original.get("_display") or {}).get("extension", [])}
    assert languages & {"zh-Hant", "zh-Hans", "en"}
    assert condition["meta"]["source"].endswith("/Organization/ha-queen-mary")


def test_not_fhir_is_refused_with_its_reason(client, app) -> None:  # type: ignore[no-untyped-def]
    refused = client.post("/ingest/fhir", content=b"{not json", headers=_headers(app))
    assert refused.status_code == 422 and "not JSON" in refused.json()["issue"][0]["diagnostics"]
    empty = client.post("/ingest/fhir", content=b'{"resourceType": "Bundle", "type": "collection"}', headers=_headers(app))
    assert empty.status_code == 422 and empty.json()["issue"][0]["expression"] == ["Bundle.entry"]
