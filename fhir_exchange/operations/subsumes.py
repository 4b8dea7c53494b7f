"""``CodeSystem/$subsumes``: how two codes of a hierarchical code system relate (R4
codesystem-operation-subsumes): equivalent, subsumes, subsumed-by or not-subsumed."""

from __future__ import annotations

from typing import Any

from fhir_exchange.errors import InvalidRequest
from fhir_exchange.operations.common import OperationCall
from fhir_exchange.operations.parameters import Spec, parameters, value

SPEC = Spec("subsumes", {
    "codeA": "code", "codeB": "code", "system": "uri", "version": "string", "codingA": "Coding", "codingB": "Coding",
})


def run(call: OperationCall) -> dict[str, Any]:
    given = call.input
    if given.has("codingA") or given.has("codingB"):
        if given.has("codeA") or given.has("codeB") or not (given.has("codingA") and given.has("codingB")):
            raise InvalidRequest("$subsumes takes codeA and codeB, or codingA and codingB")
        coding_a, coding_b = given.get("codingA"), given.get("codingB")
        systems = {c.get("system") for c in (coding_a, coding_b)} - {None}
        if len(systems) > 1:
            raise InvalidRequest(f"$subsumes compares codes of one code system, not {' and '.join(sorted(systems))}")
        system = systems.pop() if systems else given.get("system")
        code_a, code_b = coding_a.get("code"), coding_b.get("code")
    else:
        system, code_a, code_b = given.get("system"), given.get("codeA"), given.get("codeB")
    if not code_a or not code_b:
        raise InvalidRequest("$subsumes needs two codes: codeA and codeB (or codingA and codingB)")
    outcome = call.terminology.subsumes(system, code_a, code_b, given.get("version"), resource_id=call.resource_id)
    return parameters(value("outcome", "Code", outcome))
