"""An institution changes only its own records: update and delete of a resource another
institution holds answer 403 and change nothing; the holder may; a WriteRule can refuse."""

from __future__ import annotations

from tests.conftest import issue_token

OBSERVATION = {"resourceType": "Observation", "status": "final", "code": {"text": "glucose"},
               "subject": {"reference": "Patient/p1"}}


def _as(client, app, institution: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": f"Bearer {issue_token(app, institution=institution)}"}


def test_another_institution_may_not_update_or_delete(client, app) -> None:  # type: ignore[no-untyped-def]
    created = client.post("/fhir/Observation", json=OBSERVATION, headers=_as(client, app, "hosp-a"))
    assert created.status_code == 201
    oid = created.json()["id"]
    changed = {**OBSERVATION, "id": oid, "status": "amended"}

    refused = client.put(f"/fhir/Observation/{oid}", json=changed, headers=_as(client, app, "hosp-b"))
    assert refused.status_code == 403
    assert refused.json()["resourceType"] == "OperationOutcome"
    assert "hosp-a" in refused.json()["issue"][0]["diagnostics"]
    assert client.delete(f"/fhir/Observation/{oid}", headers=_as(client, app, "hosp-b")).status_code == 403

    current = client.get(f"/fhir/Observation/{oid}", headers=_as(client, app, "hosp-a")).json()
    assert current["meta"]["versionId"] == "1" and current["status"] == "final"

    assert client.put(f"/fhir/Observation/{oid}", json=changed, headers=_as(client, app, "hosp-a")).status_code == 200
    assert client.delete(f"/fhir/Observation/{oid}", headers=_as(client, app, "hosp-a")).status_code in (200, 204)


def test_write_rules_refuse_inside_the_transaction(client, app) -> None:  # type: ignore[no-untyped-def]
    from fhir_exchange.errors import Unprocessable

    class NoDrafts:
        def check(self, session, context, resource_type, previous, new):  # type: ignore[no-untyped-def]
            if new is not None and new.get("status") == "preliminary":
                raise Unprocessable("no preliminary results here")

    runtime = app.state.fhir
    saved = runtime.write_rules
    runtime.write_rules = (NoDrafts(),)
    try:
        refused = client.post("/fhir/Observation", json={**OBSERVATION, "status": "preliminary"})
        assert refused.status_code == 422
        assert "preliminary" in refused.json()["issue"][0]["diagnostics"]
        assert client.get("/fhir/Observation", params={"status": "preliminary"}).json().get("total") == 0
    finally:
        runtime.write_rules = saved
