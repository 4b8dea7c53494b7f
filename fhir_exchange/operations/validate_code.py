"""``CodeSystem/$validate-code`` and ``ValueSet/$validate-code``: is this code (with this
display, if given) in the code system / value set? (R4 codesystem- and
valueset-operation-validate-code). A wrong code is an answer (result false), not an error."""

from __future__ import annotations

from typing import Any

from fhir_exchange.errors import InvalidRequest
from fhir_exchange.operations.common import OperationCall, codings
from fhir_exchange.operations.parameters import Spec, parameters, value
from terminology.service import ValidationResult

CODE_SYSTEM_SPEC = Spec("validate-code", {
    "url": "uri", "codeSystem": "Resource", "code": "code", "version": "string", "display": "string",
    "coding": "Coding", "codeableConcept": "CodeableConcept", "date": "dateTime", "abstract": "boolean",
    "displayLanguage": "code", "system": "uri",
})
VALUE_SET_SPEC = Spec("validate-code", {
    "url": "uri", "context": "uri", "valueSet": "Resource", "valueSetVersion": "string", "code": "code",
    "system": "uri", "systemVersion": "string", "version": "string", "display": "string", "coding": "Coding",
    "codeableConcept": "CodeableConcept", "date": "dateTime", "abstract": "boolean", "displayLanguage": "code",
})


def _output(result: ValidationResult) -> dict[str, Any]:
    return parameters(
        value("result", "Boolean", result.result),
        value("message", "String", result.message),
        value("display", "String", result.display),
    )


def run_code_system(call: OperationCall) -> dict[str, Any]:
    if call.input.has("codeSystem"):
        raise InvalidRequest("$validate-code against an inline codeSystem is not supported; store the CodeSystem first")
    results = []
    for coding in codings(call, system_param="url"):
        system = coding.get("system") or call.input.get("url") or call.input.get("system")
        results.append(call.terminology.validate_code_in_system(
            system, coding["code"], coding.get("version") or call.input.get("version"),
            coding.get("display") or call.input.get("display"), call.language, resource_id=call.resource_id,
        ))
    return _output(_first_valid(results))


def run_value_set(call: OperationCall) -> dict[str, Any]:
    if call.input.has("valueSet"):
        raise InvalidRequest("$validate-code against an inline valueSet is not supported; store the ValueSet first")
    results = []
    for coding in codings(call):
        results.append(call.terminology.validate_code_in_value_set(
            call.input.get("url"), coding.get("system") or call.input.get("system"), coding["code"],
            version=call.input.get("valueSetVersion"),
            system_version=coding.get("version") or call.input.get("systemVersion"),
            display=coding.get("display") or call.input.get("display"), language=call.language,
            resource_id=call.resource_id,
        ))
    return _output(_first_valid(results))


def _first_valid(results: list[ValidationResult]) -> ValidationResult:
    """A CodeableConcept is valid when one of its codings is."""
    return next((r for r in results if r.result), results[0])
