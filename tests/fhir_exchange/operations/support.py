"""Helpers for the operation tests: the starter content's systems, and reading Parameters,
ValueSet expansions and OperationOutcomes."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import ROOT

FHIR_JSON = "application/fhir+json"
CONTENT = ROOT / "terminology" / "content"
MANIFEST = CONTENT / "manifest.json"

ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_CN = "http://baylink.example.org/fhir/sid/icd-10-cn-clinical"
LOINC = "http://loinc.org"
HK_LAB = "http://baylink.example.org/fhir/CodeSystem/hk-example-lab"
CN_TO_WHO = "http://baylink.example.org/fhir/ConceptMap/icd10-cn-clinical-to-who"
HK_LAB_TO_LOINC = "http://baylink.example.org/fhir/ConceptMap/hk-example-lab-to-loinc"
SENSITIVE_DIAGNOSES = "http://baylink.example.org/fhir/ValueSet/sensitive-diagnoses"
CONSENT_CATEGORIES = "http://baylink.example.org/fhir/ValueSet/consent-categories"
DERIVED_EXTENSION = "http://baylink.example.org/fhir/StructureDefinition/designation-derived-by"


def parameters(*items: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(items)}


def ok(response: httpx.Response, resource_type: str = "Parameters") -> dict[str, Any]:
    """The body of a 200 answer, which must be a ``resource_type``."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == resource_type, body
    return body


def value_of(parameter: dict[str, Any]) -> Any:
    values = [v for k, v in parameter.items() if k.startswith("value")]
    assert len(values) == 1, parameter
    return values[0]


def out(body: dict[str, Any], name: str) -> Any:
    """The value of the one output parameter called ``name`` (None when absent)."""
    found = [p for p in body.get("parameter") or [] if p["name"] == name]
    assert len(found) <= 1, f"{name} given {len(found)} times in {body}"
    return value_of(found[0]) if found else None


def groups(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Every output parameter called ``name`` that has parts, as {part name: part}."""
    return [{p["name"]: p for p in item["part"]} for item in body.get("parameter") or [] if item["name"] == name]


def designations(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """$lookup designations by language: {language: {"value": ..., "derived_by": ...}}."""
    result = {}
    for item in body["parameter"]:
        if item["name"] != "designation":
            continue
        parts = {p["name"]: value_of(p) for p in item["part"]}
        derived = [e["valueString"] for e in item.get("extension") or [] if e["url"] == DERIVED_EXTENSION]
        assert parts["language"] not in result, f"two designations in {parts['language']}"
        result[parts["language"]] = {"value": parts["value"], "derived_by": derived[0] if derived else None}
    return result


def properties(body: dict[str, Any], code: str) -> list[str]:
    return [value_of(g["value"]) for g in groups(body, "property") if value_of(g["code"]) == code]


def contains(value_set: dict[str, Any]) -> list[dict[str, Any]]:
    return value_set["expansion"].get("contains") or []


def codes(value_set: dict[str, Any]) -> list[str]:
    return [c["code"] for c in contains(value_set)]


def displays(value_set: dict[str, Any]) -> dict[str, str]:
    return {c["code"]: c.get("display") for c in contains(value_set)}


def expansion_parameters(value_set: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(p["name"], value_of(p)) for p in value_set["expansion"].get("parameter") or []]


def outcome(response: httpx.Response, status: int) -> str:
    """The diagnostics of an OperationOutcome answered with ``status``, joined."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"] and all(i["severity"] in ("error", "fatal") for i in body["issue"]), body
    return " | ".join(i.get("diagnostics", "") for i in body["issue"])
