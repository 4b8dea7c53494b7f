"""What the CapabilityStatement says of the operations, what is served for what is not
listed, and the media type of every kind of answer."""

from __future__ import annotations

import pytest

from tests.fhir_exchange.operations.support import FHIR_JSON, ICD10, ICD10_CN, SENSITIVE_DIAGNOSES, ok, outcome, parameters

EXPECTED = {
    "CodeSystem": {
        "lookup": "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup",
        "validate-code": "http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code",
        "subsumes": "http://hl7.org/fhir/OperationDefinition/CodeSystem-subsumes",
    },
    "ValueSet": {
        "expand": "http://hl7.org/fhir/OperationDefinition/ValueSet-expand",
        "validate-code": "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code",
    },
    "ConceptMap": {
        "translate": "http://hl7.org/fhir/OperationDefinition/ConceptMap-translate",
    },
    "Patient": {
        "match": "http://hl7.org/fhir/OperationDefinition/Patient-match",
        "ihe-pix": "https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix",
        "everything": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    },
}


def test_capability_statement_lists_the_operations(loaded_client) -> None:
    statement = ok(loaded_client.get("/fhir/metadata"), "CapabilityStatement")
    listed = {
        resource["type"]: {op["name"]: op["definition"] for op in resource["operation"]}
        for resource in statement["rest"][0]["resource"] if resource.get("operation")
    }
    assert listed == EXPECTED


@pytest.mark.parametrize("path", [
    "/fhir/Patient/$summary",
    "/fhir/Patient/p1/$summary",
    "/fhir/CodeSystem/$expand",  # an operation of another type
    "/fhir/ValueSet/$lookup",
    "/fhir/ConceptMap/$closure",
])
def test_unlisted_operation_is_404(loaded_client, path: str) -> None:
    name = path.rsplit("$", 1)[1]
    text = outcome(loaded_client.get(path), 404)
    assert f"${name}" in text
    assert "CodeSystem/$lookup" in text  # and it says what is supported


def test_unlisted_operation_by_post_is_404(loaded_client) -> None:
    assert "$summary" in outcome(loaded_client.post("/fhir/Patient/$summary", json=parameters()), 404)


@pytest.mark.parametrize(("method", "path", "params", "status"), [
    ("GET", "/fhir/CodeSystem/$lookup", {"system": ICD10, "code": "E11"}, 200),
    ("GET", "/fhir/CodeSystem/$lookup", {"system": ICD10, "code": "nope"}, 404),
    ("GET", "/fhir/CodeSystem/$lookup", {"system": ICD10, "code": "E11", "x": "1"}, 400),
    ("GET", "/fhir/CodeSystem/$validate-code", {"url": ICD10, "code": "nope"}, 200),
    ("GET", "/fhir/CodeSystem/$subsumes", {"system": ICD10, "codeA": "E11", "codeB": "E11.9"}, 200),
    ("GET", "/fhir/ValueSet/$expand", {"url": SENSITIVE_DIAGNOSES, "count": 1}, 200),
    ("GET", "/fhir/ValueSet/$expand", {"url": SENSITIVE_DIAGNOSES, "count": 100_000}, 400),
    ("GET", "/fhir/ValueSet/$validate-code", {"url": SENSITIVE_DIAGNOSES, "system": ICD10, "code": "B20"}, 200),
    ("GET", "/fhir/ConceptMap/$translate", {"system": ICD10_CN, "code": "E11.900"}, 200),
    ("GET", "/fhir/ConceptMap/$translate", {"url": "http://example.org/none", "system": ICD10_CN, "code": "E11.900"}, 404),
    ("GET", "/fhir/Patient/$summary", {}, 404),
    ("POST", "/fhir/CodeSystem/$lookup", {}, 400),  # an empty body
    ("GET", "/fhir/metadata", {}, 200),
])
def test_every_answer_is_fhir_json(loaded_client, method: str, path: str, params: dict[str, object], status: int) -> None:
    response = loaded_client.request(method, path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == FHIR_JSON


def test_xml_is_refused_with_415(loaded_client) -> None:
    response = loaded_client.get("/fhir/CodeSystem/$lookup", params={"system": ICD10, "code": "E11", "_format": "xml"})
    assert "xml" in outcome(response, 415)
