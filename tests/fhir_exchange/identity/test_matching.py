"""Cross-border matching and linkage: names in every form, scores and grades, linking sure
matches, queueing doubtful ones, PIXm cross-references and PDQm $match end to end."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_exchange.identity.matching import Profile, score
from fhir_exchange.identity.names import name_keys
from tests.conftest import issue_token

HKID = "http://baylink.example.org/fhir/sid/hkid"
PERMIT = "http://baylink.example.org/fhir/sid/cn-travel-permit-hkmo"
RIC = "http://baylink.example.org/fhir/sid/cn-resident-id"
REVIEW = "http://baylink.example.org/fhir/CodeSystem/task-code|patient-match-review"


@pytest.mark.parametrize(("latin", "han"), [
    (("CHAN", "Tai Man"), ("陳", "大文")),     # Hong Kong romanisation, Traditional
    (("CHAN", "Tai Man"), ("陈", "大文")),     # ... against Simplified
    (("Chen", "Dawen"), ("陳", "大文")),       # Hanyu Pinyin
    (("CHEUNG", "Chi Keung"), ("張", "志強")),
    (("Cheong", "Chi Keung"), ("张", "志强")),  # Macao spelling
    (("LEONG", "Kin Hong"), ("梁", "健康")),
    (("LEI", "Ka Man"), ("李", "嘉文")),
    (("YUEN", "Hoi Yee"), ("袁", "海仪")),
    (("Li", "Xiaoming"), ("李", "小明")),
])
def test_a_name_matches_across_its_forms(latin: tuple[str, str], han: tuple[str, str]) -> None:
    assert name_keys(*latin) & name_keys(*han)


@pytest.mark.parametrize(("a", "b"), [
    (("CHAN", "Tai Man"), ("陈", "大明")),
    (("LEE", "Siu Ming"), ("李", "小文")),
    (("Chen", "Dawen"), ("程", "大文")),
])
def test_different_names_do_not(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert not name_keys(*a) & name_keys(*b)


def _patient(family: str, given: str, born: str | None = "1950-03-04", sex: str | None = "male",
             identifiers: list[tuple[str, str]] = (), **extra: Any) -> dict[str, Any]:  # type: ignore[assignment]
    patient: dict[str, Any] = {"resourceType": "Patient", "name": [{"family": family, "given": [given]}],
                               "identifier": [{"system": s, "value": v} for s, v in identifiers], **extra}
    if born:
        patient["birthDate"] = born
    if sex:
        patient["gender"] = sex
    if not patient["identifier"]:
        del patient["identifier"]
    return patient


def test_scores_and_grades() -> None:
    hk = Profile.of(_patient("CHAN", "Tai Man", identifiers=[(HKID, "A123456(3)")]))
    assert score(hk, Profile.of(_patient("陈", "大文", identifiers=[(HKID, "a1234563")]))).grade == "certain"
    probable = score(hk, Profile.of(_patient("陈", "大文")))
    assert (probable.grade, probable.score, probable.reasons) == ("probable", 0.9, ("name", "birth date", "sex"))
    assert score(hk, Profile.of(_patient("陈", "大文", sex=None))).grade == "probable"
    assert score(hk, Profile.of(_patient("陈", "大文", born="1960-01-01"))).grade == "certainly-not"
    assert score(hk, Profile.of(_patient("陈", "大文", sex="female"))).grade == "possible"
    assert score(hk, Profile.of(_patient("陈", "小明"))).grade == "possible"  # family name, birth date, sex


def _post(client, patient: dict[str, Any]) -> str:  # type: ignore[no-untyped-def]
    response = client.post("/fhir/Patient", json=patient)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_a_shared_identity_document_links_records_both_ways(client) -> None:  # type: ignore[no-untyped-def]
    hk = _post(client, _patient("CHAN", "Tai Man", identifiers=[(HKID, "A123456(3)")]))
    sz = _post(client, _patient("陈", "大文", identifiers=[(PERMIT, "H12345678"), (HKID, "A123456(3)")]))
    hk_now = client.get(f"/fhir/Patient/{hk}").json()
    sz_now = client.get(f"/fhir/Patient/{sz}").json()
    assert hk_now["link"] == [{"other": {"reference": f"Patient/{sz}"}, "type": "seealso"}]
    assert sz_now["link"] == [{"other": {"reference": f"Patient/{hk}"}, "type": "seealso"}]
    assert client.get("/fhir/Task", params={"code": REVIEW}).json()["total"] == 0


def test_doubtful_matches_are_queued_for_review_never_linked(client) -> None:  # type: ignore[no-untyped-def]
    hk = _post(client, _patient("CHAN", "Tai Man", identifiers=[(HKID, "A123456(3)")]))
    sz = _post(client, _patient("陈", "大文", identifiers=[(RIC, "11010519491231002X")]))
    assert "link" not in client.get(f"/fhir/Patient/{hk}").json()
    tasks = client.get("/fhir/Task", params={"code": REVIEW, "status": "requested"}).json()
    assert tasks["total"] == 1
    task = tasks["entry"][0]["resource"]
    assert task["focus"] == {"reference": f"Patient/{sz}"}
    assert {"type": {"text": "candidate"}, "valueReference": {"reference": f"Patient/{hk}"}} in task["input"]
    assert "probable" in task["description"]
    client.put(f"/fhir/Patient/{sz}", json={**client.get(f"/fhir/Patient/{sz}").json(), "active": True})
    assert client.get("/fhir/Task", params={"code": REVIEW}).json()["total"] == 1  # one task per pair


def test_pix_cross_references_every_linked_identifier(client) -> None:  # type: ignore[no-untyped-def]
    hk = _post(client, _patient("CHAN", "Tai Man", identifiers=[(HKID, "A123456(3)")]))
    sz = _post(client, _patient("陈", "大文", identifiers=[(PERMIT, "H12345678"), (HKID, "A123456(3)")]))
    mo = _post(client, _patient("CHAN", "Tai Man", identifiers=[(PERMIT, "H12345678")]))
    _post(client, _patient("CHAN", "Siu Ming", born="1980-01-01", identifiers=[(HKID, "CA182361(1)")]))
    body = client.get("/fhir/Patient/$ihe-pix", params={"sourceIdentifier": "urn:baylink:hkid|a1234563"}).json()
    targets = {p["valueReference"]["reference"] for p in body["parameter"] if p["name"] == "targetId"}
    assert targets == {f"Patient/{hk}", f"Patient/{sz}", f"Patient/{mo}"}
    identifiers = [p["valueIdentifier"] for p in body["parameter"] if p["name"] == "targetIdentifier"]
    assert {"system": PERMIT, "value": "H12345678"} in identifiers
    assert {"system": HKID, "value": "A123456(3)"} not in identifiers  # the source itself is not repeated
    only = client.get("/fhir/Patient/$ihe-pix", params={"sourceIdentifier": f"{HKID}|A123456(3)", "targetSystem": PERMIT})
    assert {p["valueIdentifier"]["system"] for p in only.json()["parameter"] if p["name"] == "targetIdentifier"} == {PERMIT}
    assert client.get("/fhir/Patient/$ihe-pix", params={"sourceIdentifier": f"{HKID}|Z999999(3)"}).status_code in (400, 404)
    unknown = client.get("/fhir/Patient/$ihe-pix", params={"sourceIdentifier": f"{HKID}|C123456(9)"})
    assert unknown.status_code == 404 and unknown.json()["resourceType"] == "OperationOutcome"
    bad = client.get("/fhir/Patient/$ihe-pix", params={"sourceIdentifier": f"{HKID}|A123456(4)"})
    assert bad.status_code == 400 and "check character" in bad.json()["issue"][0]["diagnostics"]


def test_match_returns_graded_candidates(app, anonymous_client, client) -> None:  # type: ignore[no-untyped-def]
    hk = _post(client, _patient("CHAN", "Tai Man", identifiers=[(HKID, "A123456(3)")]))
    other = _post(client, _patient("LEE", "Siu Ming"))
    query = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": _patient("陳", "大文")}, {"name": "count", "valueInteger": 5}]}
    bundle = client.post("/fhir/Patient/$match", json=query).json()
    assert bundle["type"] == "searchset"
    first = bundle["entry"][0]
    assert first["resource"]["id"] == hk and first["search"]["score"] == 0.9
    assert first["search"]["extension"] == [{"url": "http://hl7.org/fhir/StructureDefinition/match-grade",
                                             "valueCode": "probable"}]
    assert other not in [e["resource"]["id"] for e in bundle["entry"] if e["search"]["score"] >= 0.5]
    certain_only = client.post("/fhir/Patient/$match", json={"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": _patient("陳", "大文")}, {"name": "onlyCertainMatches", "valueBoolean": True}]})
    assert certain_only.json()["total"] == 0
    by_document = client.post("/fhir/Patient/$match", json={"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": _patient("陳", "大文", born=None, identifiers=[(HKID, "A123456(3)")])},
        {"name": "onlyCertainMatches", "valueBoolean": True}]}).json()
    assert [e["resource"]["id"] for e in by_document["entry"]] == [hk]
    vague = client.post("/fhir/Patient/$match", json={"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": _patient("陳", "大文", born=None)}]})
    assert vague.status_code == 400
    no_scope = {"Authorization": f"Bearer {issue_token(app, 'system/Observation.rs')}"}
    assert anonymous_client.post("/fhir/Patient/$match", json=query, headers=no_scope).status_code == 403
