"""SMART Backend Services end to end: real keys made here, real signed assertions, real tokens."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from baylink import cli
from baylink.app import create_app
from baylink.settings import get_settings
from fhir_exchange.api.routes import router as fhir_router
from fhir_exchange.auth.keys import client_assertion, generate_private_key_pem, on_behalf_of, public_jwks
from fhir_exchange.auth.service import ClientRegistry
from fhir_exchange.ports import Release, ReleaseDecision, RequestContext
from tests.conftest import issue_token

TOKEN_URL = "http://testserver/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _organization(client: TestClient, org_id: str) -> None:
    response = client.put(f"/fhir/Organization/{org_id}", json={"resourceType": "Organization", "id": org_id,
                                                               "name": org_id})
    assert response.status_code in (200, 201), response.text


def _register(app: Any, org_id: str, pem: bytes, scope: str = "system/*.cruds") -> str:
    with app.state.fhir.sessions() as session, session.begin():
        return ClientRegistry(session).register(org_id, public_jwks(pem), scope).client_id


def _grant(client: TestClient, assertion: str, scope: str = "system/*.rs") -> Any:
    return client.post("/auth/token", data={"grant_type": "client_credentials", "scope": scope,
                                            "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion})


@pytest.fixture
def hospitals(app, client) -> dict[str, tuple[str, bytes]]:  # type: ignore[no-untyped-def]
    """Two institutions, each with a client: one signing ES384, one RS384."""
    result = {}
    for org_id, kind in (("hospital-a", "EC"), ("hospital-b", "RSA")):
        _organization(client, org_id)
        pem = generate_private_key_pem(kind)
        result[org_id] = (_register(app, org_id, pem), pem)
    return result


@pytest.mark.parametrize("org_id", ["hospital-a", "hospital-b"])
def test_good_client_gets_a_token_and_uses_it(anonymous_client: TestClient, hospitals, org_id: str) -> None:  # type: ignore[no-untyped-def]
    client_id, pem = hospitals[org_id]
    response = _grant(anonymous_client, client_assertion(client_id, pem, TOKEN_URL), "system/Patient.rs system/Observation.cruds")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 300
    assert body["scope"] == "system/Patient.rs system/Observation.cruds"
    assert response.headers["cache-control"] == "no-store"
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    assert anonymous_client.get("/fhir/Patient", headers=auth).status_code == 200
    created = anonymous_client.post("/fhir/Observation", headers=auth, json={
        "resourceType": "Observation", "status": "final", "code": {"text": "pulse"}})
    assert created.status_code == 201, created.text


def test_scopes_are_cut_to_what_the_client_is_registered_for(app, anonymous_client: TestClient, client) -> None:  # type: ignore[no-untyped-def]
    _organization(client, "clinic")
    pem = generate_private_key_pem()
    client_id = _register(app, "clinic", pem, "system/Observation.rs")
    narrowed = _grant(anonymous_client, client_assertion(client_id, pem, TOKEN_URL), "system/*.cruds")
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "system/Observation.rs"
    refused = _grant(anonymous_client, client_assertion(client_id, pem, TOKEN_URL), "system/Patient.rs")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"


@pytest.mark.parametrize(("case", "status", "pattern"), [
    ("wrong key", 401, "signature does not verify"),
    ("expired", 401, "expired"),
    ("exp too far ahead", 401, "more than 5 minutes"),
    ("wrong audience", 401, "aud must be"),
    ("unknown client", 401, "not registered"),
    ("other institution's client id", 401, "signature does not verify"),
    ("iss differs from sub", 401, "iss and sub"),
    ("HS256", 401, "RS384 or ES384"),
])
def test_bad_assertions_are_refused(anonymous_client: TestClient, hospitals, case: str, status: int, pattern: str) -> None:  # type: ignore[no-untyped-def]
    client_a, pem_a = hospitals["hospital-a"]
    client_b, _ = hospitals["hospital-b"]
    now = datetime.now(UTC)
    assertion = {
        "wrong key": lambda: client_assertion(client_a, generate_private_key_pem(), TOKEN_URL),
        "expired": lambda: client_assertion(client_a, pem_a, TOKEN_URL, now=now - timedelta(minutes=10)),
        "exp too far ahead": lambda: client_assertion(client_a, pem_a, TOKEN_URL, lifetime=timedelta(minutes=30)),
        "wrong audience": lambda: client_assertion(client_a, pem_a, "http://elsewhere/auth/token"),
        "unknown client": lambda: client_assertion("nobody", pem_a, TOKEN_URL),
        # a token asked for under hospital B's client id, signed with hospital A's key
        "other institution's client id": lambda: client_assertion(client_b, pem_a, TOKEN_URL),
        "iss differs from sub": lambda: client_assertion(client_a, pem_a, TOKEN_URL, extra={"sub": client_b}),
        "HS256": lambda: __import__("jwt").encode(
            {"iss": client_a, "sub": client_a, "aud": TOKEN_URL, "exp": int((now + timedelta(minutes=2)).timestamp()),
             "jti": "x"}, "secret-secret-secret-secret-secret!", algorithm="HS256"),
    }[case]()
    response = _grant(anonymous_client, assertion)
    assert response.status_code == status, response.text
    assert response.json()["error"] == "invalid_client"
    assert re.search(pattern, response.json()["error_description"]), response.json()


def test_a_replayed_jti_is_refused(anonymous_client: TestClient, hospitals) -> None:  # type: ignore[no-untyped-def]
    client_id, pem = hospitals["hospital-a"]
    assertion = client_assertion(client_id, pem, TOKEN_URL, jti="once-only")
    assert _grant(anonymous_client, assertion).status_code == 200
    replay = _grant(anonymous_client, assertion)
    assert replay.status_code == 401 and "already used" in replay.json()["error_description"]
    fresh = _grant(anonymous_client, client_assertion(client_id, pem, TOKEN_URL, jti="once-only"))
    assert fresh.status_code == 401  # the same jti in a new assertion is still a replay


def test_grant_form_errors(anonymous_client: TestClient) -> None:
    assert anonymous_client.post("/auth/token", data={"grant_type": "password"}).json()["error"] == "unsupported_grant_type"
    wrong_type = anonymous_client.post("/auth/token", data={"grant_type": "client_credentials"})
    assert wrong_type.status_code == 400 and wrong_type.json()["error"] == "invalid_request"
    as_json = anonymous_client.post("/auth/token", json={"grant_type": "client_credentials"})
    assert as_json.status_code == 400


def test_missing_scope_is_403_operation_outcome(app, anonymous_client: TestClient, client) -> None:  # type: ignore[no-untyped-def]
    patient = client.post("/fhir/Patient", json={"resourceType": "Patient"}).json()
    client.post("/fhir/Observation", json={"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                           "subject": {"reference": f"Patient/{patient['id']}"}})
    auth = {"Authorization": f"Bearer {issue_token(app, 'system/Observation.rs')}"}
    refused = anonymous_client.post("/fhir/Patient", headers=auth, json={"resourceType": "Patient"})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/fhir+json")
    assert "system/Patient.c" in refused.json()["issue"][0]["diagnostics"]
    assert anonymous_client.get(f"/fhir/Patient/{patient['id']}", headers=auth).status_code == 403
    assert anonymous_client.get("/fhir/Patient", headers=auth).status_code == 403
    # an included resource the scopes do not cover is left out, not leaked
    bundle = anonymous_client.get("/fhir/Observation", headers=auth, params={"_include": "Observation:subject"}).json()
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Observation"]
    read_only = {"Authorization": f"Bearer {issue_token(app, 'system/Patient.rs')}"}
    assert anonymous_client.delete(f"/fhir/Patient/{patient['id']}", headers=read_only).status_code == 403
    assert anonymous_client.get(f"/fhir/Patient/{patient['id']}", headers=read_only).status_code == 200


def _sample_path(path: str) -> str:
    return (path.replace("{resource_type}", "Patient").replace("{resource_id}", "p1").replace("{version_id}", "1")
            .replace("${name}", "$lookup").replace("{name}", "lookup"))


def test_every_fhir_route_refuses_an_unauthenticated_call(app, anonymous_client: TestClient) -> None:  # type: ignore[no-untyped-def]
    open_paths = {"/fhir/metadata", "/fhir/.well-known/smart-configuration"}
    checked = 0
    for route in fhir_router.routes:
        path = "/fhir" + getattr(route, "path", "")
        if path in open_paths:
            continue
        for method in sorted(getattr(route, "methods", ()) - {"HEAD"}):
            for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
                response = anonymous_client.request(method, _sample_path(path), headers=headers,
                                                    json={"resourceType": "Patient"} if method in ("POST", "PUT") else None)
                assert response.status_code == 401, (method, path, headers, response.text)
                assert response.json()["resourceType"] == "OperationOutcome"
                assert response.headers["www-authenticate"].startswith("Bearer")
            checked += 1
    assert checked >= 15
    for path in open_paths:
        assert anonymous_client.get(path).status_code == 200


def test_expired_and_foreign_tokens_are_401(app, anonymous_client: TestClient) -> None:  # type: ignore[no-untyped-def]
    expired = app.state.fhir.signer.issue("c", "org", "system/*.cruds", now=datetime.now(UTC) - timedelta(hours=1)).token
    response = anonymous_client.get("/fhir/Patient", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and "expired" in response.json()["issue"][0]["diagnostics"]
    from fhir_exchange.auth.tokens import TokenSigner, generate_key_pem

    foreign = TokenSigner(generate_key_pem()).issue("c", "org", "system/*.cruds").token
    assert anonymous_client.get("/fhir/Patient", headers={"Authorization": f"Bearer {foreign}"}).status_code == 401


def test_smart_configuration_and_capability_statement_name_the_token_endpoint(anonymous_client: TestClient) -> None:
    config = anonymous_client.get("/fhir/.well-known/smart-configuration").json()
    assert config["token_endpoint"] == TOKEN_URL
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    assert set(config["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    statement = anonymous_client.get("/fhir/metadata").json()
    security = statement["rest"][0]["security"]
    assert security["extension"][0]["extension"][0]["valueUri"] == TOKEN_URL


class ContextRecorder:
    def __init__(self) -> None:
        self.contexts: list[RequestContext] = []

    def decide(self, context: RequestContext, resource: dict[str, Any]) -> ReleaseDecision:
        self.contexts.append(context)
        return ReleaseDecision(Release.PERMIT, resource)


def test_the_token_purpose_and_user_become_the_request_context(settings, app, client, hospitals) -> None:  # type: ignore[no-untyped-def]
    client.post("/fhir/Patient", json={"resourceType": "Patient", "id": "x"})
    client.put("/fhir/Patient/p", json={"resourceType": "Patient", "id": "p"})
    recorder = ContextRecorder()
    recorded_app = create_app(settings, gate=recorder)
    client_id, pem = hospitals["hospital-a"]
    with TestClient(recorded_app, base_url="http://testserver") as http:
        token = _grant(http, client_assertion(client_id, pem, TOKEN_URL)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert http.get("/fhir/Patient/p", headers=auth).status_code == 200
        assert http.get("/fhir/Patient/p", headers={**auth, "X-Purpose-Of-Use": "ETREAT"}).status_code == 200
        bad = http.get("/fhir/Patient/p", headers={**auth, "X-Purpose-Of-Use": "MARKETING"})
        assert bad.status_code == 400 and "TREAT, ETREAT, HPAYMT, HOPERAT" in bad.json()["issue"][0]["diagnostics"]
        user = on_behalf_of(client_id, pem, "http://testserver/fhir", "PractitionerRole/dr-chan", ["break-glass"])
        assert http.get("/fhir/Patient/p", headers={**auth, "X-On-Behalf-Of": user}).status_code == 200
        forged = on_behalf_of(client_id, generate_private_key_pem(), "http://testserver/fhir", "PractitionerRole/dr-x")
        refused = http.get("/fhir/Patient/p", headers={**auth, "X-On-Behalf-Of": forged})
        assert refused.status_code == 400 and "X-On-Behalf-Of" in refused.json()["issue"][0]["diagnostics"]
    recorded_app.state.engine.dispose()
    first, emergency, on_behalf = recorder.contexts
    assert (first.client_id, first.institution, first.purpose_of_use) == (client_id, "hospital-a", "TREAT")
    assert "system/*.rs" in first.scopes
    assert emergency.purpose_of_use == "ETREAT"
    assert (on_behalf.user, on_behalf.roles) == ("PractitionerRole/dr-chan", ("break-glass",))


def test_admin_api_registers_clients_only_with_the_admin_scope(app, anonymous_client: TestClient, client) -> None:  # type: ignore[no-untyped-def]
    _organization(client, "hospital-c")
    body = {"institution": "hospital-c", "jwks": public_jwks(generate_private_key_pem()), "scope": "system/Patient.rs"}
    plain = {"Authorization": f"Bearer {issue_token(app, 'system/*.cruds')}"}
    assert anonymous_client.post("/auth/clients", headers=plain, json=body).status_code == 403
    assert anonymous_client.post("/auth/clients", json=body).status_code == 401
    admin = {"Authorization": f"Bearer {issue_token(app, 'baylink/admin')}"}
    created = anonymous_client.post("/auth/clients", headers=admin, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["client_id"].startswith("hospital-c-")
    unknown = anonymous_client.post("/auth/clients", headers=admin, json={**body, "institution": "nowhere"})
    assert unknown.status_code == 400 and "not a registered institution" in unknown.json()["error_description"]
    private = {**body, "jwks": {"keys": [{**public_jwks(generate_private_key_pem())["keys"][0], "d": "secret"}]}}
    assert anonymous_client.post("/auth/clients", headers=admin, json=private).status_code == 400


def test_cli_registers_a_client_and_prints_its_id(app, settings, client, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _organization(client, "hospital-d")
    monkeypatch.setenv("BAYLINK_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        key = tmp_path / "client.pem"
        assert runner.invoke(cli.app, ["clients", "keygen", "--out", str(key)]).exit_code == 0
        result = runner.invoke(cli.app, ["clients", "register", "--org", "hospital-d", "--jwks",
                                         str(key.with_suffix(".jwks.json")), "--scope", "system/Patient.rs"])
        assert result.exit_code == 0, result.output
        registered = orjson.loads(result.stdout)
        assert registered["client_id"].startswith("hospital-d-") and registered["scope"] == "system/Patient.rs"
        token = _grant(client, client_assertion(registered["client_id"], key.read_bytes(), TOKEN_URL), "system/Patient.rs")
        assert token.status_code == 200
        jwks = str(key.with_suffix(".jwks.json"))
        refused = runner.invoke(cli.app, ["clients", "register", "--org", "nowhere", "--jwks", jwks])
        assert refused.exit_code == 1 and "not a registered institution" in refused.output
    finally:
        get_settings.cache_clear()
