"""The audit trail: a BALP AuditEvent per request touching patient data, written in the
request's transaction, append-only, hash-chained, and verified end to end."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from baylink import cli
from baylink.settings import get_settings
from tests.conftest import issue_token


def _events(client) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    bundle = client.get("/fhir/AuditEvent", params={"_count": 100, "_sort": "date"}).json()
    return [e["resource"] for e in bundle.get("entry", [])]


def _verify(settings, monkeypatch) -> Any:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BAYLINK_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli.app, ["audit", "verify"])
    finally:
        get_settings.cache_clear()


@pytest.fixture
def chart(client) -> str:  # type: ignore[no-untyped-def]
    client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    client.put("/fhir/Observation/o1", json={"resourceType": "Observation", "id": "o1", "status": "final",
                                             "code": {"text": "HbA1c"}, "subject": {"reference": "Patient/p1"}})
    return "p1"


def test_a_read_is_audited_as_balp_says(app, anonymous_client, chart: str, client) -> None:  # type: ignore[no-untyped-def]
    token = issue_token(app, "system/Patient.rs", client_id="his-x")  # the custodian's second system
    headers = {"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "ETREAT"}
    assert anonymous_client.get("/fhir/Patient/p1", headers=headers).status_code == 200
    event = _events(client)[-1]
    assert event["action"] == "R" and event["subtype"][0]["code"] == "read"
    assert event["type"]["code"] == "rest" and event["outcome"] == "0"
    assert event["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"
    whos = [a["who"] for a in event["agent"]]
    assert {"identifier": {"system": "http://baylink.example.org/fhir/sid/client", "value": "his-x"}} in whos
    assert {"reference": "Organization/test-hospital"} in whos
    patients = [e for e in event["entity"] if e["role"]["code"] == "1"]
    assert [e["what"]["reference"] for e in patients] == ["Patient/p1"]
    assert "IHE.BasicAudit.PatientRead" in event["meta"]["profile"][0]


def test_writes_and_searches_are_audited_with_their_resources_and_query(client, chart: str) -> None:  # type: ignore[no-untyped-def]
    events = _events(client)
    assert [(e["action"], e["subtype"][0]["code"]) for e in events] == [("U", "update"), ("U", "update")]
    assert {"reference": "Observation/o1/_history/1"} in [e.get("what") for e in events[1]["entity"]]
    client.get("/fhir/Observation", params={"subject": "Patient/p1", "code": "x"})
    client.get("/fhir/Observation", params={"subject": "Patient/p1"})
    search = _events(client)[-1]
    assert search["action"] == "E" and search["subtype"][0]["code"] == "search-type"
    query = next(e for e in search["entity"] if e["role"]["code"] == "24")
    assert base64.b64decode(query["query"]).decode() == "Observation?subject=Patient%2Fp1"
    assert len(_events(client)) == 3  # the search that matched nothing touched no patient


def test_requests_without_patient_data_are_not_audited(client) -> None:  # type: ignore[no-untyped-def]
    client.put("/fhir/Organization/o", json={"resourceType": "Organization", "id": "o", "name": "Clinic"})
    client.get("/fhir/Organization/o")
    assert _events(client) == []


def test_a_failed_transaction_leaves_no_audit_event(client) -> None:  # type: ignore[no-untyped-def]
    bad = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation"}, "request": {"method": "POST", "url": "Observation"}},
    ]})
    assert bad.status_code == 400
    assert _events(client) == []


def test_audit_events_are_append_only(client, chart: str) -> None:  # type: ignore[no-untyped-def]
    event = _events(client)[0]
    for response in (
        client.put(f"/fhir/AuditEvent/{event['id']}", json={**event, "outcome": "8"}),
        client.delete(f"/fhir/AuditEvent/{event['id']}"),
        client.post("/fhir/AuditEvent", json={k: v for k, v in event.items() if k not in ("id", "meta")}),
    ):
        assert response.status_code == 405
        assert "append-only" in response.json()["issue"][0]["diagnostics"]
    assert client.get(f"/fhir/AuditEvent/{event['id']}").json()["outcome"] == "0"


def test_auditors_search_by_patient_and_date_with_the_audit_scope(app, anonymous_client, client, chart: str) -> None:  # type: ignore[no-untyped-def]
    client.post("/fhir/Patient", json={"resourceType": "Patient"})
    auditor = {"Authorization": f"Bearer {issue_token(app, 'system/AuditEvent.rs')}"}
    found = anonymous_client.get("/fhir/AuditEvent", headers=auditor,
                                 params={"patient": "Patient/p1", "date": "ge2020-01-01"}).json()
    assert found["total"] == 2
    clinician = {"Authorization": f"Bearer {issue_token(app, 'system/Patient.rs system/Observation.rs')}"}
    assert anonymous_client.get("/fhir/AuditEvent", headers=clinician, params={"patient": "Patient/p1"}).status_code == 403


def test_verify_passes_on_a_clean_chain_and_names_the_first_tampered_record(app, client, settings, chart, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        client.get("/fhir/Patient/p1")
    clean = _verify(settings, monkeypatch)
    assert clean.exit_code == 0 and "intact: 5 records" in clean.output
    engine = app.state.engine
    with engine.begin() as conn:
        pk, event_id = conn.execute(text("SELECT resource_pk, event_id FROM audit_chain WHERE seq = 3")).one()
        content = conn.execute(text("SELECT content FROM resource WHERE pk = :pk"), {"pk": pk}).scalar_one()
        altered = content if isinstance(content, str) else __import__("json").dumps(content)
        conn.execute(text("UPDATE resource SET content = :c WHERE pk = :pk"),
                     {"c": altered.replace('"ETREAT"', '"TREAT"').replace('"0"', '"8"'), "pk": pk})
    broken = _verify(settings, monkeypatch)
    assert broken.exit_code == 1
    assert f"record 3 (AuditEvent/{event_id})" in broken.output and "altered" in broken.output


@pytest.mark.parametrize("tamper", ["remove", "reorder", "truncate"])
def test_verify_detects_removed_reordered_and_truncated_records(app, client, settings, chart, monkeypatch, tamper) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        client.get("/fhir/Patient/p1")
    with app.state.engine.begin() as conn:
        if tamper == "remove":
            conn.execute(text("DELETE FROM audit_chain WHERE seq = 2"))
            expected = "record 2 is missing"
        elif tamper == "reorder":
            # swap the order of records 2 and 3, each keeping its own event and hashes
            conn.execute(text("UPDATE audit_chain SET seq = 1000 WHERE seq = 2"))
            conn.execute(text("UPDATE audit_chain SET seq = 2 WHERE seq = 3"))
            conn.execute(text("UPDATE audit_chain SET seq = 3 WHERE seq = 1000"))
            expected = "does not chain from record 1"
        else:
            conn.execute(text("DELETE FROM audit_chain WHERE seq = 5"))
            expected = "records after it have been removed"
    broken = _verify(settings, monkeypatch)
    assert broken.exit_code == 1 and expected in broken.output, broken.output
