"""Identity document numbers at rest: sealed in every table, opened on release, searchable
through the blind index, and re-sealed when keys rotate."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from baylink import cli
from baylink.app import create_app
from baylink.settings import get_settings
from fhir_exchange.crypto import IdentifierVault, KeyError_, new_key
from tests.conftest import issue_token

HKID = "http://baylink.example.org/fhir/sid/hkid"
RIC = "http://baylink.example.org/fhir/sid/cn-resident-id"
PLAIN = ("A123456(3)", "A1234563", "11010519491231002X", "CA182361(1)", "CA1823611")


def _people(client) -> list[str]:  # type: ignore[no-untyped-def]
    ids = []
    for hkid, ric in (("a1234563", "11010519491231002X"), ("CA182361(1)", None)):
        identifiers = [{"system": HKID, "value": hkid}] + ([{"system": RIC, "value": ric}] if ric else [])
        created = client.post("/fhir/Patient", json={"resourceType": "Patient", "identifier": identifiers})
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    client.put(f"/fhir/Patient/{ids[0]}", json={"resourceType": "Patient", "id": ids[0], "active": True,
                                                "identifier": [{"system": HKID, "value": "A123456(3)"}]})
    return ids


def _dump(engine) -> str:  # type: ignore[no-untyped-def]
    """Every row of every table, as text."""
    parts = []
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            if table.startswith("term_concept_text"):
                continue
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                parts.append(" ".join(str(value) for value in row))
    return "\n".join(parts)


def test_a_database_dump_holds_no_plain_identity_number(app, client) -> None:  # type: ignore[no-untyped-def]
    ids = _people(client)
    # a paged search (saved as a snapshot) and the audit trail both see the numbers too
    page = client.get("/fhir/Patient", params={"identifier": f"{HKID}|A123456(3),{HKID}|CA182361(1)", "_count": 1}).json()
    assert page["total"] == 2 and any(link["relation"] == "next" for link in page["link"])
    next_url = next(link["url"] for link in page["link"] if link["relation"] == "next")
    assert client.get(next_url.replace("http://testserver", "")).json()["entry"]
    dump = _dump(app.state.engine)
    assert ids[0] in dump  # the dump is real
    for number in PLAIN:
        assert number not in dump, number
    assert "enc1.test1." in dump


def test_reads_and_searches_see_the_plain_numbers(app, client) -> None:  # type: ignore[no-untyped-def]
    first, second = _people(client)
    assert client.get(f"/fhir/Patient/{first}").json()["identifier"] == [{"system": HKID, "value": "A123456(3)"}]
    history = client.get(f"/fhir/Patient/{first}/_history").json()
    assert {e["resource"]["identifier"][0]["value"] for e in history["entry"]} == {"A123456(3)"}
    for spelling in ("A123456(3)", "a1234563"):
        found = client.get("/fhir/Patient", params={"identifier": f"{HKID}|{spelling}"}).json()
        assert [e["resource"]["id"] for e in found.get("entry", [])] == [first]
    found = client.get("/fhir/Patient", params={"identifier": "urn:baylink:hkid|CA1823611"}).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [second]
    found = client.get("/fhir/Patient", params={"identifier": f"{RIC}|11010519491231002X"}).json()
    assert found["total"] == 0  # the update dropped the resident ID from the current version
    with app.state.engine.connect() as conn:
        codes = conn.execute(text("SELECT code FROM idx_token WHERE res_type = 'Patient' AND param = 'identifier'")).scalars()
        assert all(re.fullmatch(r"[0-9a-f]{64}", code) for code in codes)


def test_a_sealed_number_is_bound_to_its_system_and_key() -> None:
    vault = IdentifierVault.from_text(f"k1:{new_key()}", "k1", new_key())
    sealed = vault.seal(HKID, "A123456(3)")
    assert vault.open(HKID, sealed) == "A123456(3)"
    with pytest.raises(KeyError_, match="failed authentication"):
        vault.open(RIC, sealed)
    other = IdentifierVault.from_text(f"k2:{new_key()}", "k2", new_key())
    with pytest.raises(KeyError_, match="key 'k1'"):
        other.open(HKID, sealed)
    assert vault.blind(HKID, "A123456(3)") == vault.blind(HKID, "A123456(3)") != vault.blind(RIC, "A123456(3)")
    with pytest.raises(ValueError, match="current identifier key id"):
        IdentifierVault.from_text(f"k1:{new_key()}", "k9", new_key())


def test_keys_rotate_reseals_everything_under_the_new_key(app, settings, client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    first, _ = _people(client)
    old_keys = settings.identifier_keys.get_secret_value()
    new = f"test2:{new_key()}"
    monkeypatch.setenv("BAYLINK_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BAYLINK_IDENTIFIER_KEYS", f"{old_keys},{new}")
    monkeypatch.setenv("BAYLINK_IDENTIFIER_KEY_ID", "test2")
    monkeypatch.setenv("BAYLINK_BLIND_INDEX_KEY", settings.blind_index_key.get_secret_value())
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.app, ["keys", "rotate", "--batch", "1"])
        assert result.exit_code == 0, result.output
        assert "re-sealed under key test2" in result.output
    finally:
        get_settings.cache_clear()
    dump = _dump(app.state.engine)
    assert "enc1.test1." not in dump and "enc1.test2." in dump
    # a server holding only the new key reads and finds everything
    rotated = settings.model_copy(update={"identifier_keys": __import__("pydantic").SecretStr(new),
                                          "identifier_key_id": "test2"})
    later = create_app(rotated)
    try:
        with TestClient(later, base_url="http://testserver") as http:
            http.headers["Authorization"] = f"Bearer {issue_token(later)}"
            assert http.get(f"/fhir/Patient/{first}").json()["identifier"][0]["value"] == "A123456(3)"
            found = http.get("/fhir/Patient", params={"identifier": f"{HKID}|A123456(3)"}).json()
            assert found["total"] == 1
    finally:
        later.state.engine.dispose()
        create_app(settings).state.engine.dispose()  # put the suite's keys back for the tests after this one
