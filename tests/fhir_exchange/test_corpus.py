"""Every official R4 example and every IPS example is accepted, reads back as sent (apart
from the server's meta), and the transaction/batch bundles among them are processed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import shared_path

SERVER_META = ("versionId", "lastUpdated")
CUSTODIAN = "http://baylink.example.org/fhir/CodeSystem/custodian"


def _without_server_meta(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without what the server sets: versionId, lastUpdated, the custodian tag."""
    copy = dict(resource)
    meta = {k: v for k, v in (copy.pop("meta", None) or {}).items() if k not in SERVER_META}
    tags = [t for t in meta.pop("tag", []) if t.get("system") != CUSTODIAN]
    if tags:
        meta["tag"] = tags
    if meta:
        copy["meta"] = meta
    return copy


def _examples(folder: str) -> list[Path]:
    return sorted(p for p in shared_path("corpora", folder).glob("*.json") if not p.name.startswith("_"))


def _refused_by_consent_rules(resource: dict[str, Any]) -> bool:
    """BayLink's rule (consent/rules.py): an institution records an active Consent only with
    its evidence (sourceAttachment/sourceReference); the spec's examples mostly carry none."""
    return (resource["resourceType"] == "Consent" and resource.get("status") == "active"
            and not (resource.get("sourceAttachment") or resource.get("sourceReference")))


def _store_and_compare(client, path: Path) -> None:  # type: ignore[no-untyped-def]
    resource = json.loads(path.read_text(encoding="utf-8"))
    resource_type = resource["resourceType"]
    if _refused_by_consent_rules(resource):
        refused = client.post(f"/fhir/{resource_type}", json=resource)
        assert refused.status_code == 422, f"{path.name}: {refused.status_code} {refused.text[:300]}"
        assert refused.json()["issue"][0]["expression"] == ["Consent.sourceAttachment"]
        resource = {**resource, "sourceReference": {"reference": "DocumentReference/signed-form"}}
    if resource.get("id"):
        response = client.put(f"/fhir/{resource_type}/{resource['id']}", json=resource)
        assert response.status_code in (200, 201), f"{path.name}: {response.status_code} {response.text[:500]}"
        url = f"/fhir/{resource_type}/{resource['id']}"
    else:
        response = client.post(f"/fhir/{resource_type}", json=resource)
        assert response.status_code == 201, f"{path.name}: {response.status_code} {response.text[:500]}"
        url = f"/fhir/{resource_type}/{response.json()['id']}"
        resource = {**resource, "id": response.json()["id"]}
    stored = client.get(url).json()
    assert _without_server_meta(stored) == _without_server_meta(resource), path.name


def test_every_r4_example_is_accepted_and_reads_back_equal(client) -> None:
    examples = _examples("fhir-r4-examples")
    assert len(examples) == 396
    for path in examples:
        _store_and_compare(client, path)


def test_every_ips_example_is_accepted_and_reads_back_equal(client) -> None:
    examples = _examples("ips-examples")
    assert len(examples) == 44
    for path in examples:
        _store_and_compare(client, path)


def _bundles(kind: str) -> list[Path]:
    found = []
    for path in _examples("fhir-r4-examples"):
        if path.name.startswith("Bundle-"):
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("type") == kind:
                found.append(path)
    return found


def _post_bundle(client, path: Path, response_type: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """POST a corpus bundle to the base; the response has its type and one entry per request."""
    bundle = json.loads(path.read_text(encoding="utf-8"))
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 200, f"{path.name}: {response.text[:800]}"
    result = response.json()
    assert result["type"] == response_type
    assert len(result["entry"]) == len(bundle["entry"])
    return result["entry"]


# The spec's illustrative transaction asks for an operation (POST ValueSet/$lookup) inside the
# transaction and for If-Match on a version that does not exist: all-or-nothing, it must fail as
# a whole, clearly, and write nothing.
ILLUSTRATIVE = "Bundle-bundle-transaction.json"


def test_example_transactions_are_processed(client) -> None:
    bundles = [p for p in _bundles("transaction") if p.name != ILLUSTRATIVE]
    assert len(bundles) == 3, "the corpus has transaction bundles"
    for path in bundles:
        for entry in _post_bundle(client, path, "transaction-response"):
            assert entry["response"]["status"][:1] == "2", (path.name, entry)


def test_example_batches_are_processed(client) -> None:
    bundles = _bundles("batch")
    assert bundles, "the corpus has batch bundles"
    for path in bundles:
        # each entry answers for itself: a status, and an OperationOutcome when it failed
        for entry in _post_bundle(client, path, "batch-response"):
            status = entry["response"]["status"]
            assert status[:1] in "2345"
            if status[:1] in "45":
                assert entry["response"]["outcome"]["resourceType"] == "OperationOutcome"


def test_the_illustrative_transaction_fails_whole_and_says_why(client) -> None:
    bundle = json.loads(shared_path("corpora", "fhir-r4-examples", ILLUSTRATIVE).read_text(encoding="utf-8"))
    response = client.post("/fhir", json=bundle)
    assert 400 <= response.status_code < 500
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Bundle.entry[" in outcome["issue"][0]["diagnostics"]
    assert client.get("/fhir/Patient").json()["total"] == 0
