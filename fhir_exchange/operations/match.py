"""``Patient/$match`` (IHE PDQm ITI-119): scored candidates for a Patient, each graded with
the match-grade extension; and ``Patient/$ihe-pix`` (IHE PIXm ITI-83): every identifier and
Patient linked to the same person as a source identifier."""

from __future__ import annotations

from typing import Any

from fhir_exchange.errors import InvalidRequest, NotFound
from fhir_exchange.identity.documents import InvalidIdentifier, document_for
from fhir_exchange.identity.linkage import Linkage
from fhir_exchange.operations.common import OperationCall
from fhir_exchange.operations.parameters import Spec, parameters, value
from fhir_exchange.validation import validate_resource

MATCH_SPEC = Spec("match", {"resource": "Resource", "onlyCertainMatches": "boolean", "count": "integer"})
PIX_SPEC = Spec("ihe-pix", {"sourceIdentifier": "string", "targetSystem": "uri"},
                repeats=frozenset({"targetSystem"}))
MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"


def run_match(call: OperationCall) -> dict[str, Any]:
    patient = call.input.get("resource")
    if not isinstance(patient, dict):
        raise InvalidRequest("$match takes a Patient in the 'resource' parameter (POST a Parameters resource)")
    patient = validate_resource(patient, "Patient")
    if not patient.get("birthDate") and not patient.get("identifier"):
        raise InvalidRequest("$match needs the Patient's birthDate or an identity document identifier to search by")
    call.service.repo.require("Patient", "s")
    count = min(call.input.get("count") or 10, 100)
    candidates = Linkage(call.service).candidates(patient, internal=False)
    if call.input.get("onlyCertainMatches"):
        certain = [c for c in candidates if c.match.grade == "certain"]
        candidates = certain if len(certain) == 1 else []  # PDQm: only when exactly one is certain
    entries = [{
        "fullUrl": f"{call.base_url}/Patient/{c.stored.id}",
        "resource": c.stored.content,
        "search": {"mode": "match", "score": c.match.score,
                   "extension": [{"url": MATCH_GRADE, "valueCode": c.match.grade}]},
    } for c in candidates[:count]]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
    if entries:
        bundle["entry"] = entries
    return bundle


def run_pix(call: OperationCall) -> dict[str, Any]:
    source = call.input.get("sourceIdentifier")
    system, bar, number = (source or "").rpartition("|")
    if not bar or not system or not number:
        raise InvalidRequest("$ihe-pix needs sourceIdentifier=system|value")
    document = document_for(system)
    if document is not None:
        try:
            system, number = document.system, document.validate(number)
        except InvalidIdentifier as exc:
            raise InvalidRequest(f"sourceIdentifier: '{number}' is not a valid {document.name} number: {exc}") from None
    call.service.repo.require("Patient", "r")
    patients = Linkage(call.service).cross_references(system, number)
    if not patients:
        raise NotFound(f"no patient holds the identifier {system}|{number}")
    wanted = set(call.input.all("targetSystem"))
    outputs = []
    for stored in sorted(patients, key=lambda s: s.id):
        for identifier in (stored.content or {}).get("identifier") or []:
            if (identifier.get("system"), identifier.get("value")) == (system, number):
                continue
            if wanted and identifier.get("system") not in wanted:
                continue
            outputs.append(value("targetIdentifier", "Identifier",
                                 {"system": identifier.get("system"), "value": identifier.get("value")}))
        outputs.append(value("targetId", "Reference", {"reference": f"Patient/{stored.id}"}))
    return parameters(*outputs)
