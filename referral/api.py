"""``POST /referrals``: a referral for clinicians' systems in one call. It writes the same
ServiceRequest and Task a FHIR transaction would (HL7 BSeR shape), in one database
transaction, through the same rules (referral/rules.py). Tracking, transitions and search are
plain FHIR: ``PUT Task/{id}`` with the new status, ``Task?owner=…&status=…``."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from fhir_exchange.api.rendering import fhir_response, json_body
from fhir_exchange.api.runtime import UnitOfWorkDep
from fhir_exchange.errors import InvalidRequest
from referral.rules import PROGRAMME_EXTENSION, REFERRAL_CATEGORY_CODE, TASK_CODE

PRIORITIES = ("routine", "urgent", "asap", "stat")
REFERRAL_CATEGORY = {"coding": [{"system": "http://snomed.info/sct", "code": REFERRAL_CATEGORY_CODE,
                                  "display": "Patient referral"}]}

router = APIRouter(include_in_schema=False)


def _reference(body: dict[str, Any], name: str, prefixes: tuple[str, ...], *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.startswith(prefixes) or "/" not in value:
        raise InvalidRequest(f"'{name}' must be a reference to {' or '.join(p.rstrip('/') for p in prefixes)}, "
                             f"e.g. \"{prefixes[0]}example\"", expression=[name])
    return value


def referral_resources(body: Any, institution: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ServiceRequest and Task of a ``POST /referrals`` body; a bad body is named."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body is a JSON object: patient, recipient, reason, priority, supportingInfo")
    if institution is None:
        raise InvalidRequest("a referral is made by an institution's client (the token names no institution)")
    patient = _reference(body, "patient", ("Patient/",))
    recipient = _reference(body, "recipient", ("Organization/",))
    clinician = _reference(body, "requester", ("PractitionerRole/", "Practitioner/"), required=False)
    priority = body.get("priority", "routine")
    if priority not in PRIORITIES:
        raise InvalidRequest(f"'priority' is one of {', '.join(PRIORITIES)}", expression=["priority"])
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidRequest("'reason' says why the patient is referred", expression=["reason"])
    supporting = body.get("supportingInfo") or []
    if not isinstance(supporting, list) or not all(isinstance(s, str) and "/" in s for s in supporting):
        raise InvalidRequest("'supportingInfo' is a list of references such as \"Observation/123\"",
                             expression=["supportingInfo"])
    request_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
    service_request: dict[str, Any] = {
        "resourceType": "ServiceRequest", "id": request_id, "status": "active", "intent": "order",
        "category": [REFERRAL_CATEGORY], "priority": priority,
        "code": body.get("code") or {"text": body.get("service") or "referral"},
        "subject": {"reference": patient},
        "requester": {"reference": clinician or f"Organization/{institution}"},
        "performer": [{"reference": recipient}],
        "reasonCode": [{"text": reason.strip()}],
        "supportingInfo": [{"reference": s} for s in supporting],
    }
    if body.get("programme"):
        service_request["extension"] = [{"url": PROGRAMME_EXTENSION, "valueCode": str(body["programme"])}]
    if body.get("note"):
        service_request["note"] = [{"text": str(body["note"])}]
    task = {
        "resourceType": "Task", "id": task_id, "status": "requested", "intent": "order", "priority": priority,
        "code": {"coding": [{"system": TASK_CODE, "code": "fulfill"}]},
        "focus": {"reference": f"ServiceRequest/{request_id}"}, "for": {"reference": patient},
        "requester": {"reference": f"Organization/{institution}"}, "owner": {"reference": recipient},
    }
    return service_request, task


@router.post("/referrals")
async def create_referral(request: Request, uow: UnitOfWorkDep) -> Response:
    body = await json_body(request)
    service_request, task = referral_resources(body, uow.context.institution)
    with uow.transaction("create") as service:
        stored_request = service.create("ServiceRequest", service_request)
        assert stored_request.stored is not None
        task["focus"] = {"reference": f"ServiceRequest/{stored_request.stored.id}"}
        stored_task = service.create("Task", task)
        assert stored_task.stored is not None
        bundle = {"resourceType": "Bundle", "type": "transaction-response", "entry": [
            {"fullUrl": service.full_url(outcome.stored), "resource": outcome.body,
             "response": {"status": "201 Created", "etag": f'W/"{outcome.stored.version_id}"',
                          "location": f"{outcome.stored.resource_type}/{outcome.stored.id}/_history/{outcome.stored.version_id}"}}
            for outcome in (stored_request, stored_task)]}
    return fhir_response(bundle, 201, {"Location": f"{uow.base_url}/Task/{stored_task.stored.id}"}, request)
