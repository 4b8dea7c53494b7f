"""FHIR operations, one module per operation; ``OPERATIONS`` maps (resource type, name) to
what parses its input and what runs it. The routes and the CapabilityStatement both read
this table, so what is listed is what is served."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fhir_exchange.operations import everything, expand, lookup, match, subsumes, translate, validate_code
from fhir_exchange.operations.common import OperationCall
from fhir_exchange.operations.parameters import Spec


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    resource_type: str
    spec: Spec
    run: Callable[[OperationCall], dict[str, Any]]
    definition: str  # the canonical OperationDefinition it implements


def _hl7(resource_type: str, name: str) -> str:
    return f"http://hl7.org/fhir/OperationDefinition/{resource_type}-{name}"


OPERATIONS: dict[tuple[str, str], Operation] = {
    (op.resource_type, op.name): op
    for op in (
        Operation("lookup", "CodeSystem", lookup.SPEC, lookup.run, _hl7("CodeSystem", "lookup")),
        Operation("validate-code", "CodeSystem", validate_code.CODE_SYSTEM_SPEC, validate_code.run_code_system,
                  _hl7("CodeSystem", "validate-code")),
        Operation("subsumes", "CodeSystem", subsumes.SPEC, subsumes.run, _hl7("CodeSystem", "subsumes")),
        Operation("expand", "ValueSet", expand.SPEC, expand.run, _hl7("ValueSet", "expand")),
        Operation("validate-code", "ValueSet", validate_code.VALUE_SET_SPEC, validate_code.run_value_set,
                  _hl7("ValueSet", "validate-code")),
        Operation("translate", "ConceptMap", translate.SPEC, translate.run, _hl7("ConceptMap", "translate")),
        Operation("match", "Patient", match.MATCH_SPEC, match.run_match, _hl7("Patient", "match")),
        Operation("ihe-pix", "Patient", match.PIX_SPEC, match.run_pix,
                  "https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix"),
        Operation("everything", "Patient", everything.SPEC, everything.run, _hl7("Patient", "everything")),
    )
}
