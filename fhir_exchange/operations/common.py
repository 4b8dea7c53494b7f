"""What every terminology operation needs: the caller's display language, the terminology
service over the request's transaction, and the code being asked about (given as
system + code, a Coding, or a CodeableConcept)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from fhir_exchange.errors import InvalidRequest
from fhir_exchange.operations.parameters import OperationInput
from terminology.languages import preferred_language
from terminology.service import TerminologyService
from terminology.store import TerminologyStore


@dataclass(slots=True)
class OperationCall:
    """One invocation: the parsed input, the instance it was called on (if any), the
    Accept-Language header, and the request's database session."""

    input: OperationInput
    resource_id: str | None
    accept_language: str | None
    session: Session
    base_url: str
    service: Any = None  # the request's FhirService (operations over stored resources use it)

    @property
    def terminology(self) -> TerminologyService:
        return TerminologyService(TerminologyStore(self.session))

    @property
    def language(self) -> str | None:
        return preferred_language(self.input.get("displayLanguage"), self.accept_language)


def codings(call: OperationCall, *, system_param: str = "system", code_param: str = "code",
            coding_param: str = "coding", concept_param: str | None = "codeableConcept") -> list[dict[str, Any]]:
    """The coding(s) an operation is about; exactly one way of giving them is allowed."""
    given = [p for p in (code_param, coding_param, concept_param) if p and call.input.has(p)]
    if len(given) != 1:
        names = " or ".join(p for p in (code_param, coding_param, concept_param) if p)
        raise InvalidRequest(f"${call.input.spec.operation} needs exactly one of {names}"
                             + (f" (got {', '.join(given)})" if given else ""))
    if given[0] == code_param:
        return [{"system": call.input.get(system_param), "code": call.input.get(code_param),
                 "version": call.input.get("version") if "version" in call.input.spec.parameters else None,
                 "display": call.input.get("display") if "display" in call.input.spec.parameters else None}]
    if given[0] == coding_param:
        return [_checked_coding(call, call.input.get(coding_param), coding_param)]
    concept = call.input.get(concept_param or "") or {}
    items = concept.get("coding") or []
    if not items:
        raise InvalidRequest(f"${call.input.spec.operation}: the codeableConcept has no coding")
    return [_checked_coding(call, c, concept_param or "") for c in items]


def _checked_coding(call: OperationCall, coding: Any, name: str) -> dict[str, Any]:
    if not isinstance(coding, dict) or not coding.get("code"):
        raise InvalidRequest(f"${call.input.spec.operation}: '{name}' needs a code")
    return coding
