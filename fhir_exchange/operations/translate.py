"""``ConceptMap/$translate``: the target code(s) a source code maps to, each with its
equivalence and the map it comes from (R4 conceptmap-operation-translate). An ambiguous map
gives every target; ``result`` is true when one of them is not unmatched or disjoint."""

from __future__ import annotations

from typing import Any

from fhir_exchange.errors import InvalidRequest
from fhir_exchange.operations.common import OperationCall, codings
from fhir_exchange.operations.parameters import Spec, parameters, part, value

SPEC = Spec("translate", {
    "url": "uri", "conceptMap": "Resource", "conceptMapVersion": "string", "code": "code", "system": "uri",
    "version": "string", "source": "uri", "coding": "Coding", "codeableConcept": "CodeableConcept", "target": "uri",
    "targetsystem": "uri", "dependency": "string", "reverse": "boolean", "displayLanguage": "code",
})


def run(call: OperationCall) -> dict[str, Any]:
    if call.input.has("conceptMap") or call.input.has("dependency"):
        raise InvalidRequest("$translate with an inline conceptMap or a dependency is not supported")
    matches = []
    messages = []
    result = False
    for coding in codings(call):
        if not coding.get("system"):
            raise InvalidRequest("$translate needs the system of the code to translate")
        translation = call.terminology.translate(
            coding["system"], coding["code"], target_system=call.input.get("targetsystem"),
            map_url=call.input.get("url"), map_version=call.input.get("conceptMapVersion"),
            map_resource_id=call.resource_id, target_value_set=call.input.get("target"),
            reverse=bool(call.input.get("reverse")), language=call.language,
        )
        result = result or translation.result
        if translation.message:
            messages.append(translation.message)
        for match in translation.matches:
            concept = {k: v for k, v in (("system", match.system), ("code", match.code), ("display", match.display)) if v}
            matches.append(part(
                "match",
                value("equivalence", "Code", match.equivalence),
                value("concept", "Coding", concept or None),
                value("source", "Uri", match.map_url),
                value("comment", "String", match.comment) if match.comment else None,
            ))
    return parameters(
        value("result", "Boolean", result),
        value("message", "String", "; ".join(messages) if messages else None),
        *matches,
    )
