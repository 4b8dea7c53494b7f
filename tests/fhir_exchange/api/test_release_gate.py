"""Every read path passes every resource it returns through the ReleaseGate.

A fake gate (a port implementation; the database is real) denies resources tagged
``secret`` and masks Patient identifiers; each path must honour both.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from baylink.app import create_app
from fhir_exchange.ports import Release, ReleaseDecision, RequestContext
from tests.conftest import issue_token

SECRET = {"system": "urn:test", "code": "secret"}


class DenySecretMaskIdentifiers:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def decide(self, context: RequestContext, resource: dict[str, Any]) -> ReleaseDecision:
        self.seen.append(f"{resource['resourceType']}/{resource.get('id')}")
        if any(t.get("code") == "secret" for t in resource.get("meta", {}).get("tag", [])):
            return ReleaseDecision(Release.DENY, reason="tagged secret")
        if resource["resourceType"] == "Patient" and "identifier" in resource:
            masked = {k: v for k, v in resource.items() if k != "identifier"}
            return ReleaseDecision(Release.PERMIT_WITH_MASKING, masked, "identifiers masked")
        return ReleaseDecision(Release.PERMIT, resource)


@pytest.fixture
def gate() -> DenySecretMaskIdentifiers:
    return DenySecretMaskIdentifiers()


@pytest.fixture
def gated(settings, gate, app) -> Any:  # type: ignore[no-untyped-def]
    # `app` is requested so the database is emptied before this test
    application = create_app(settings, gate=gate)
    with TestClient(application, base_url="http://testserver") as client:
        client.headers["Authorization"] = f"Bearer {issue_token(application)}"
        yield client
    application.state.engine.dispose()


@pytest.fixture
def records(gated) -> None:  # type: ignore[no-untyped-def]
    gated.put("/fhir/Patient/p", json={"resourceType": "Patient", "id": "p",
                                       "identifier": [{"system": "urn:hkid", "value": "A1234563"}]})
    gated.put("/fhir/Observation/open", json={"resourceType": "Observation", "id": "open", "status": "final",
                                              "code": {"text": "BP"}, "subject": {"reference": "Patient/p"}})
    gated.put("/fhir/Observation/hidden", json={"resourceType": "Observation", "id": "hidden", "status": "final",
                                                "meta": {"tag": [SECRET]}, "code": {"text": "HIV"},
                                                "subject": {"reference": "Patient/p"}})


@pytest.mark.usefixtures("records")
class TestEveryPathIsGated:
    def test_read_and_vread(self, gated) -> None:
        assert gated.get("/fhir/Observation/hidden").status_code == 404
        assert gated.get("/fhir/Observation/hidden/_history/1").status_code == 404
        assert "identifier" not in gated.get("/fhir/Patient/p").json()
        assert "identifier" not in gated.get("/fhir/Patient/p/_history/1").json()

    def test_search_matches_and_includes(self, gated) -> None:
        bundle = gated.get("/fhir/Observation?_include=Observation:subject").json()
        ids = [e["resource"]["id"] for e in bundle["entry"]]
        assert ids == ["open", "p"]
        patient = bundle["entry"][1]["resource"]
        assert "identifier" not in patient
        rev = gated.get("/fhir/Patient?_revinclude=Observation:subject").json()
        assert sorted(e["resource"]["id"] for e in rev["entry"]) == ["open", "p"]

    def test_history(self, gated) -> None:
        for url in ("/fhir/_history", "/fhir/Observation/_history", "/fhir/Observation/hidden/_history"):
            entries = gated.get(url).json().get("entry", [])
            assert all(e["resource"]["id"] != "hidden" for e in entries if "resource" in e), url
            assert all("identifier" not in e["resource"] for e in entries if "resource" in e), url

    def test_bundles(self, gated) -> None:
        batch = {"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "GET", "url": "Observation/hidden"}},
            {"request": {"method": "GET", "url": "Observation?subject=Patient/p"}},
            {"request": {"method": "GET", "url": "Patient/p"}},
        ]}
        result = gated.post("/fhir", json=batch).json()["entry"]
        assert result[0]["response"]["status"] == "404"  # denied answers as absent
        assert [e["resource"]["id"] for e in result[1]["resource"]["entry"]] == ["open"]
        assert "identifier" not in result[2]["resource"]

    def test_write_representation(self, gated) -> None:
        response = gated.put("/fhir/Patient/p", json={"resourceType": "Patient", "id": "p",
                                                      "identifier": [{"system": "urn:hkid", "value": "A1234563"}]})
        assert response.status_code == 200 and "identifier" not in response.json()

    def test_gate_sees_the_callers_context(self, gated, gate) -> None:
        gate.seen.clear()
        gated.get("/fhir/Observation/open", headers={"X-Purpose-Of-Use": "ETREAT"})
        assert gate.seen == ["Observation/open"]
