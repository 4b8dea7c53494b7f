"""``CodeSystem/$validate-code`` and ``ValueSet/$validate-code`` over the starter terminology
(R4 codesystem- and valueset-operation-validate-code): a wrong code or display is an answer
(HTTP 200, result false, a message), not an error."""

from __future__ import annotations

import pytest

from tests.fhir_exchange.operations.support import ICD10, SENSITIVE_DIAGNOSES, ok, out, outcome, parameters

CS_VALIDATE = "/fhir/CodeSystem/$validate-code"
VS_VALIDATE = "/fhir/ValueSet/$validate-code"


def concept(*codings: dict[str, str]) -> dict[str, object]:
    return {"name": "codeableConcept", "valueCodeableConcept": {"coding": list(codings)}}


# --- CodeSystem ------------------------------------------------------------------------------


def test_code_system_valid_code(loaded_client) -> None:
    body = ok(loaded_client.get(CS_VALIDATE, params={"url": ICD10, "code": "E11.9"}))
    assert out(body, "result") is True
    assert out(body, "display") == "Type 2 diabetes mellitus without complications"
    assert out(body, "message") is None


def test_code_system_valid_code_displayed_in_the_callers_language(loaded_client) -> None:
    response = loaded_client.get(CS_VALIDATE, params={"url": ICD10, "code": "E11.9"}, headers={"Accept-Language": "zh-HK"})
    assert out(ok(response), "display") == "2型糖尿病不伴有併發症"


def test_code_system_unknown_code_is_false_with_a_message(loaded_client) -> None:
    body = ok(loaded_client.get(CS_VALIDATE, params={"url": ICD10, "code": "E11.99"}))
    assert out(body, "result") is False
    assert "E11.99" in out(body, "message")


def test_code_system_wrong_display_is_false_and_gives_the_right_one(loaded_client) -> None:
    body = ok(loaded_client.get(CS_VALIDATE, params={"url": ICD10, "code": "E11.9", "display": "Type 1 diabetes"}))
    assert out(body, "result") is False
    assert "Type 1 diabetes" in out(body, "message")
    assert out(body, "display") == "Type 2 diabetes mellitus without complications"


@pytest.mark.parametrize("display", [
    "type 2 diabetes mellitus  without complications",  # case and spacing do not matter
    "2型糖尿病不伴有并发症",  # any of its designations is a display of it
    "2型糖尿病不伴有併發症",
])
def test_code_system_display_in_any_designation_is_accepted(loaded_client, display: str) -> None:
    body = ok(loaded_client.get(CS_VALIDATE, params={"url": ICD10, "code": "E11.9", "display": display}))
    assert out(body, "result") is True


def test_code_system_codeable_concept_by_post_with_one_valid_coding(loaded_client) -> None:
    body = ok(loaded_client.post(CS_VALIDATE, json=parameters(
        concept({"system": ICD10, "code": "NOT-A-CODE"}, {"system": ICD10, "code": "E11.9"}),
    )))
    assert out(body, "result") is True
    assert out(body, "display") == "Type 2 diabetes mellitus without complications"


def test_code_system_codeable_concept_with_no_valid_coding(loaded_client) -> None:
    body = ok(loaded_client.post(CS_VALIDATE, json=parameters(
        concept({"system": ICD10, "code": "NOT-A-CODE"}, {"system": ICD10, "code": "ALSO-NOT"}),
    )))
    assert out(body, "result") is False
    assert "NOT-A-CODE" in out(body, "message")


def test_code_system_coding_by_post(loaded_client) -> None:
    body = ok(loaded_client.post(CS_VALIDATE, json=parameters(
        {"name": "coding", "valueCoding": {"system": ICD10, "code": "E11", "display": "Type 2 diabetes mellitus"}},
    )))
    assert out(body, "result") is True


def test_code_system_instance_level(loaded_client) -> None:
    body = ok(loaded_client.get("/fhir/CodeSystem/icd10-who/$validate-code", params={"code": "E11.9"}))
    assert out(body, "result") is True


def test_code_system_unknown_system_is_false_naming_it(loaded_client) -> None:
    system = "http://example.org/no-such-system"
    body = ok(loaded_client.get(CS_VALIDATE, params={"url": system, "code": "E11.9"}))
    assert out(body, "result") is False
    assert system in out(body, "message")


def test_code_system_unknown_parameter_is_400_naming_it(loaded_client) -> None:
    assert "colour" in outcome(loaded_client.get(CS_VALIDATE, params={"url": ICD10, "code": "E11", "colour": "x"}), 400)


# --- ValueSet --------------------------------------------------------------------------------


def test_value_set_code_in_it(loaded_client) -> None:
    body = ok(loaded_client.get(VS_VALIDATE, params={"url": SENSITIVE_DIAGNOSES, "system": ICD10, "code": "B20"}))
    assert out(body, "result") is True
    assert out(body, "display").startswith("Human immunodeficiency virus [HIV] disease")


def test_value_set_code_not_in_it(loaded_client) -> None:
    body = ok(loaded_client.get(VS_VALIDATE, params={"url": SENSITIVE_DIAGNOSES, "system": ICD10, "code": "E11.9"}))
    assert out(body, "result") is False
    message = out(body, "message")
    assert "E11.9" in message and SENSITIVE_DIAGNOSES in message


def test_value_set_code_not_in_the_code_system(loaded_client) -> None:
    body = ok(loaded_client.get(VS_VALIDATE, params={"url": SENSITIVE_DIAGNOSES, "system": ICD10, "code": "B99.99"}))
    assert out(body, "result") is False
    assert "B99.99" in out(body, "message")


def test_value_set_wrong_display(loaded_client) -> None:
    body = ok(loaded_client.get(VS_VALIDATE, params={
        "url": SENSITIVE_DIAGNOSES, "system": ICD10, "code": "B20", "display": "Common cold",
    }))
    assert out(body, "result") is False
    assert "Common cold" in out(body, "message")


def test_value_set_codeable_concept_by_post_with_one_coding_in_it(loaded_client) -> None:
    body = ok(loaded_client.post(VS_VALIDATE, json=parameters(
        {"name": "url", "valueUri": SENSITIVE_DIAGNOSES},
        concept({"system": ICD10, "code": "E11.9"}, {"system": ICD10, "code": "F32.9"}),
    )))
    assert out(body, "result") is True
    assert out(body, "display") == "Depressive episode, unspecified"


def test_value_set_codeable_concept_with_no_coding_in_it(loaded_client) -> None:
    body = ok(loaded_client.post(VS_VALIDATE, json=parameters(
        {"name": "url", "valueUri": SENSITIVE_DIAGNOSES},
        concept({"system": ICD10, "code": "E11.9"}, {"system": ICD10, "code": "I10"}),
    )))
    assert out(body, "result") is False


def test_value_set_instance_level_in_the_callers_language(loaded_client) -> None:
    body = ok(loaded_client.get("/fhir/ValueSet/sensitive-diagnoses/$validate-code",
                                params={"system": ICD10, "code": "B20", "displayLanguage": "zh-Hant"}))
    assert out(body, "result") is True
    assert out(body, "display") == "人類免疫缺陷病毒[HIV]病造成的傳染病和寄生蟲病"


def test_value_set_code_without_a_system_is_false(loaded_client) -> None:
    body = ok(loaded_client.get(VS_VALIDATE, params={"url": SENSITIVE_DIAGNOSES, "code": "B20"}))
    assert out(body, "result") is False
    assert "system" in out(body, "message")


def test_unknown_value_set_is_404_naming_it(loaded_client) -> None:
    url = "http://example.org/ValueSet/no-such-value-set"
    assert url in outcome(loaded_client.get(VS_VALIDATE, params={"url": url, "system": ICD10, "code": "B20"}), 404)


def test_unknown_value_set_instance_is_404(loaded_client) -> None:
    response = loaded_client.get("/fhir/ValueSet/no-such-value-set/$validate-code", params={"system": ICD10, "code": "B20"})
    assert "no-such-value-set" in outcome(response, 404)
