"""``CodeSystem/$lookup``: a code's display (in the caller's language), its designations and
its parent and child codes (R4 codesystem-operation-lookup)."""

from __future__ import annotations

from typing import Any

from fhir_exchange.operations.common import OperationCall, codings
from fhir_exchange.operations.parameters import Spec, parameters, part, value
from terminology.fhir import DERIVED_EXTENSION

SPEC = Spec("lookup", {
    "code": "code", "system": "uri", "version": "string", "coding": "Coding", "date": "dateTime",
    "displayLanguage": "code", "property": "code",
}, repeats=frozenset({"property"}))


def run(call: OperationCall) -> dict[str, Any]:
    coding = codings(call, concept_param=None)[0]
    result = call.terminology.lookup(coding.get("system"), coding["code"], coding.get("version") or call.input.get("version"),
                                     call.language, resource_id=call.resource_id)
    wanted = set(call.input.all("property"))

    def property_wanted(code: str) -> bool:
        return not wanted or code in wanted

    designations = []
    if property_wanted("designation"):
        for designation in result.designations:
            item = part("designation", value("language", "Code", designation.language),
                        value("value", "String", designation.value))
            if designation.derived_by:
                item["extension"] = [{"url": DERIVED_EXTENSION, "valueString": designation.derived_by}]
            designations.append(item)
    properties = []
    if property_wanted("parent"):
        properties += [part("property", value("code", "Code", "parent"), value("value", "Code", p)) for p in result.parents]
    if property_wanted("child"):
        properties += [part("property", value("code", "Code", "child"), value("value", "Code", c)) for c in result.children]
    return parameters(
        value("name", "String", result.name),
        value("version", "String", result.version),
        value("display", "String", result.display or result.code),
        *designations,
        *properties,
    )
