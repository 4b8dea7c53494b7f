"""``CodeSystem/$subsumes`` on the ICD-10 hierarchy (R4 codesystem-operation-subsumes)."""

from __future__ import annotations

import pytest

from tests.fhir_exchange.operations.support import ICD10, ICD10_CN, ok, out, outcome, parameters

SUBSUMES = "/fhir/CodeSystem/$subsumes"


@pytest.mark.parametrize(("code_a", "code_b", "expected"), [
    ("E11", "E11.9", "subsumes"),
    ("E11.9", "E11", "subsumed-by"),
    ("E11.9", "E11.9", "equivalent"),
    ("E10", "E11.9", "not-subsumed"),
    ("E11.2", "E11.9", "not-subsumed"),  # siblings
    ("IV", "E11.9", "subsumes"),  # chapter over block over category over subcategory
    ("E10-E14", "E10.1", "subsumes"),
])
def test_outcomes(loaded_client, code_a: str, code_b: str, expected: str) -> None:
    body = ok(loaded_client.get(SUBSUMES, params={"system": ICD10, "codeA": code_a, "codeB": code_b}))
    assert body["parameter"] == [{"name": "outcome", "valueCode": expected}]


def test_codings_by_post(loaded_client) -> None:
    body = ok(loaded_client.post(SUBSUMES, json=parameters(
        {"name": "codingA", "valueCoding": {"system": ICD10, "code": "E11"}},
        {"name": "codingB", "valueCoding": {"system": ICD10, "code": "E11.9"}},
    )))
    assert out(body, "outcome") == "subsumes"


def test_codings_by_get(loaded_client) -> None:
    body = ok(loaded_client.get(SUBSUMES, params={"codingA": f"{ICD10}|E11.9", "codingB": f"{ICD10}|E11"}))
    assert out(body, "outcome") == "subsumed-by"


def test_instance_level(loaded_client) -> None:
    body = ok(loaded_client.get("/fhir/CodeSystem/icd10-who/$subsumes", params={"codeA": "E11", "codeB": "E11.9"}))
    assert out(body, "outcome") == "subsumes"


def test_unknown_code_is_404_naming_it(loaded_client) -> None:
    assert "E11.77" in outcome(loaded_client.get(SUBSUMES, params={"system": ICD10, "codeA": "E11", "codeB": "E11.77"}), 404)


def test_unknown_system_is_404_naming_it(loaded_client) -> None:
    system = "http://example.org/no-such-system"
    assert system in outcome(loaded_client.get(SUBSUMES, params={"system": system, "codeA": "A", "codeB": "B"}), 404)


def test_codings_of_two_systems_are_refused(loaded_client) -> None:
    text = outcome(loaded_client.get(SUBSUMES, params={"codingA": f"{ICD10}|E11", "codingB": f"{ICD10_CN}|E11.900"}), 400)
    assert ICD10 in text and ICD10_CN in text


@pytest.mark.parametrize("params", [
    {"system": ICD10, "codeA": "E11"},  # one code only
    {"system": ICD10, "codeA": "E11", "codingB": f"{ICD10}|E11.9"},  # a code and a coding
])
def test_two_codes_are_needed(loaded_client, params: dict[str, str]) -> None:
    assert "codeA" in outcome(loaded_client.get(SUBSUMES, params=params), 400)
