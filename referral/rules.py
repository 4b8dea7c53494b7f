"""What a referral write must satisfy (a ``fhir_exchange`` WriteRule), whichever way it comes
in (``POST /referrals``, a FHIR transaction, a PUT of the Task):

- A referral Task (``Task.code`` = task-code ``fulfill``, ``focus`` a ServiceRequest) is
  created ``requested`` by the initiating institution (``Task.requester``) for a receiving
  institution (``Task.owner``) that BayLink knows and that is designated, on the day, for
  the programme the ServiceRequest needs (e.g. Medicines and Medical Devices Connect).
- Its state changes only as ``workflow.TRANSITIONS`` allows and by the side allowed (409 /
  403 otherwise, naming the allowed moves); a rejection carries ``statusReason``, a
  completion carries the receiving side's summary in ``output``.
- If the receiving institution may not yet see every piece of supporting information
  (asked of the release gate, as the receiver), the referral waits: a consent request (a
  proposed Consent naming both institutions) goes to the patient and
  ``Task.businessStatus`` says "awaiting patient consent". When the patient approves it on
  the consent page, the Task moves to "patient consent given".
- Each change of state is told to the other side through the outbox (once per version).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from consent.policy import CATEGORIES, CROSS_BORDER_URL, DATA_CATEGORY, crosses_boundary
from consent.records import SCOPE
from fhir_exchange.errors import Conflict, FhirError, Forbidden, NotFound, Unprocessable
from fhir_exchange.institutions.registry import institution_from_resource
from fhir_exchange.notify.outbox import enqueue
from fhir_exchange.ports import AllowAllGate, Release, ReleaseGate, RequestContext
from fhir_exchange.store.repository import FhirRepository
from referral import workflow

TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
REFERRAL_CATEGORY_CODE = "3457005"  # SNOMED CT "Patient referral" (ServiceRequest.category)
BUSINESS_STATUS = "http://baylink.example.org/fhir/CodeSystem/referral-business-status"
PROGRAMME_EXTENSION = "http://baylink.example.org/fhir/StructureDefinition/referral-programme"
REFERRAL_EXTENSION = "http://baylink.example.org/fhir/StructureDefinition/consent-for-referral"
AWAITING_CONSENT = {"coding": [{"system": BUSINESS_STATUS, "code": "awaiting-patient-consent",
                                "display": "awaiting patient consent"}], "text": "awaiting patient consent"}
CONSENT_GIVEN = {"coding": [{"system": BUSINESS_STATUS, "code": "patient-consent-given",
                             "display": "patient consent given"}], "text": "patient consent given"}
_INTERNAL = RequestContext(request_id="baylink-referrals", client_id="baylink-referrals", purpose_of_use="HOPERAT",
                           scopes=("system/*.cruds",))


def is_referral_task(task: dict[str, Any] | None) -> bool:
    if not task:
        return False
    fulfil = any(c.get("system") == TASK_CODE and c.get("code") == "fulfill"
                 for c in (task.get("code") or {}).get("coding") or [])
    return fulfil and ((task.get("focus") or {}).get("reference") or "").startswith("ServiceRequest/")


def _org(reference: dict[str, Any] | None) -> str | None:
    value = (reference or {}).get("reference") or ""
    return value.removeprefix("Organization/") if value.startswith("Organization/") else None


class ReferralWriteRule:
    def __init__(self, gate: ReleaseGate, clock: Any = lambda: datetime.now(UTC)) -> None:
        self.gate = gate
        self.clock = clock

    # --- the port --------------------------------------------------------------------------------

    def check(self, session: Session, context: RequestContext, resource_type: str, previous: dict[str, Any] | None,
              new: dict[str, Any] | None) -> dict[str, Any] | None:
        if resource_type == "Task" and (is_referral_task(new) or is_referral_task(previous)):
            if new is None:
                raise Forbidden("a referral is never deleted: cancel it (Task.status 'cancelled') instead")
            repository = FhirRepository(session, _INTERNAL, AllowAllGate())
            if previous is None:
                return self._created(repository, context, new)
            return self._changed(repository, context, previous, new)
        if resource_type == "Consent" and previous is not None and new is not None:
            self._consent_answered(session, previous, new)
        return None

    # --- creation ----------------------------------------------------------------------------

    def _created(self, repository: FhirRepository, context: RequestContext, task: dict[str, Any]) -> dict[str, Any]:
        if task.get("status") not in ("requested", "draft"):
            raise Unprocessable("a referral starts as 'requested' (Task.status)", expression=["Task.status"])
        requester, owner = _org(task.get("requester")), _org(task.get("owner"))
        if requester is None or owner is None:
            raise Unprocessable("a referral names the initiating institution (Task.requester) and the receiving one "
                                "(Task.owner) as Organization references", expression=["Task.owner"])
        if context.institution is not None and requester != context.institution:
            raise Forbidden(f"a referral is made by the initiating institution itself; this client acts for "
                            f"{context.institution}, not {requester}")
        request = self._read(repository, task["focus"]["reference"])
        receiver = self._read(repository, f"Organization/{owner}", what="the receiving institution")
        initiator = self._read(repository, f"Organization/{requester}", what="the initiating institution")
        self._check_designation(request, receiver)
        patient = ((request.get("subject") or {}).get("reference") or "")
        if not patient.startswith("Patient/"):
            raise Unprocessable("the referral's ServiceRequest must name its patient (ServiceRequest.subject)",
                                expression=["ServiceRequest.subject"])
        task = {**task, "for": task.get("for") or {"reference": patient}}
        task.setdefault("authoredOn", self.clock().isoformat(timespec="seconds").replace("+00:00", "Z"))
        hidden = self._hidden_supporting_info(repository, request, owner)
        if hidden:
            self._ask_patient(repository, task, patient, requester, owner,
                              crosses_boundary(institution_from_resource(initiator).jurisdiction,
                                               institution_from_resource(receiver).jurisdiction), hidden)
            task["businessStatus"] = AWAITING_CONSENT
        enqueue(repository.session, f"referral:Task/{task['id']}:requested", "referral-requested", f"Organization/{owner}",
                {"task": f"Task/{task['id']}", "requester": requester, "patient": patient})
        return task

    @staticmethod
    def _read(repository: FhirRepository, reference: str, what: str = "") -> dict[str, Any]:
        resource_type, _, resource_id = reference.partition("/")
        try:
            stored = repository.read(resource_type, resource_id)
        except FhirError:
            stored = None
        if stored is None or stored.content is None:
            raise NotFound(f"{what or reference} ({reference}) is not known", expression=["Task.focus"])
        return stored.content

    @staticmethod
    def _check_designation(request: dict[str, Any], receiver: dict[str, Any]) -> None:
        """A referral that needs a programme goes only to an institution designated for it today."""
        needed = [e.get("valueCode") for e in request.get("extension") or [] if e.get("url") == PROGRAMME_EXTENSION]
        institution = institution_from_resource(receiver)
        today = datetime.now(UTC).date()
        for programme in needed:
            if not any(d.programme == programme and d.start and d.active_on(today) for d in institution.designations):
                raise Unprocessable(
                    f"{institution.name} ({institution.id}) is not designated for the programme '{programme}' on "
                    f"{today.isoformat()}; choose an institution the registry designates for it "
                    f"(baylink institutions list)", expression=["Task.owner"])

    def _hidden_supporting_info(self, repository: FhirRepository, request: dict[str, Any], owner: str) -> list[dict[str, Any]]:
        """The supporting information the receiver may not see today, as the gate decides."""
        receiver = RequestContext(request_id=f"referral-check-{uuid.uuid4()}", client_id="baylink-referrals",
                                  institution=owner, purpose_of_use="TREAT", scopes=("system/*.rs",))
        hidden = []
        for item in request.get("supportingInfo") or []:
            reference = item.get("reference") or ""
            resource_type, _, resource_id = reference.partition("/")
            try:
                content = repository.read(resource_type, resource_id).content
            except FhirError as exc:
                raise Unprocessable(f"supporting information {reference} is not known",
                                    expression=["ServiceRequest.supportingInfo"]) from exc
            if content is not None and self.gate.decide(receiver, content).outcome is Release.DENY:
                hidden.append(content)
        return hidden

    @staticmethod
    def _ask_patient(repository: FhirRepository, task: dict[str, Any], patient: str,
                     requester: str, owner: str, across: bool, hidden: list[dict[str, Any]]) -> None:
        categories = sorted({CATEGORIES.get(r.get("resourceType", ""), "documents") for r in hidden} | {"documents"})
        provision: dict[str, Any] = {
            "type": "permit",
            "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                            "code": "IRCP"}]}, "reference": {"reference": f"Organization/{org}"}}
                      for org in (owner, requester)],
            "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
            "code": [{"coding": [{"system": DATA_CATEGORY, "code": c}]} for c in categories],
        }
        if across:
            provision["extension"] = [{"url": CROSS_BORDER_URL, "valueBoolean": True}]
        today = datetime.now(UTC).date()
        provision["period"] = {"start": today.isoformat(), "end": today.replace(year=today.year + 1).isoformat()
                               if not (today.month == 2 and today.day == 29) else f"{today.year + 1}-02-28"}
        consent_id = str(uuid.uuid4())
        consent = {
            "resourceType": "Consent", "status": "proposed", "scope": SCOPE,
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": patient},
            "extension": [{"url": REFERRAL_EXTENSION, "valueReference": {"reference": f"Task/{task['id']}"}}],
            "provision": provision,
        }
        # written as BayLink's own (the rules that guard institutions' Consent writes do not
        # apply), held by the initiating institution: the request is its referral's
        as_requester = FhirRepository(repository.session, replace(_INTERNAL, institution=requester), AllowAllGate())
        as_requester.write_internal("Consent", consent_id, consent)
        enqueue(repository.session, f"consent-request:Consent/{consent_id}", "consent-request", patient,
                {"consent": f"Consent/{consent_id}", "requester": requester})

    # --- changes of state --------------------------------------------------------------------

    def _changed(self, repository: FhirRepository, context: RequestContext, previous: dict[str, Any],
                 task: dict[str, Any]) -> dict[str, Any] | None:
        requester, owner = _org(previous.get("requester")), _org(previous.get("owner"))
        if _org(task.get("requester")) != requester or _org(task.get("owner")) != owner or (
                (task.get("focus") or {}).get("reference") != (previous.get("focus") or {}).get("reference")):
            raise Unprocessable("a referral's initiating and receiving institutions and its ServiceRequest do not change; "
                                "cancel it and make a new referral", expression=["Task.owner"])
        side = (workflow.OWNER if context.institution == owner else workflow.REQUESTER
                if context.institution == requester else None)
        before, after = previous.get("status", ""), task.get("status", "")
        try:
            workflow.check(before, after, side)
        except workflow.TransitionRefused as refused:
            error = Conflict if refused.status == 409 else Forbidden if refused.status == 403 else Unprocessable
            raise error(str(refused), expression=["Task.status"]) from refused
        if after == "rejected" and not task.get("statusReason"):
            raise Unprocessable("a rejected referral says why (Task.statusReason)", expression=["Task.statusReason"])
        if after == "completed":
            outputs = [o.get("valueReference", {}).get("reference", "") for o in task.get("output") or []]
            if not any(ref.startswith(("Composition/", "DocumentReference/")) for ref in outputs):
                raise Unprocessable("a completed referral carries the receiving side's summary (Task.output with a "
                                    "valueReference to a Composition or DocumentReference)", expression=["Task.output"])
        if before != after:
            other = requester if side == workflow.OWNER else owner
            version = int((previous.get("meta") or {}).get("versionId", "0")) + 1
            enqueue(repository.session, f"referral:Task/{task['id']}:{version}:{after}", f"referral-{after}",
                    f"Organization/{other}", {"task": f"Task/{task['id']}", "from": before, "to": after,
                                              "by": context.institution or ""})
            task = {**task, "lastModified": self.clock().isoformat(timespec="seconds").replace("+00:00", "Z")}
        return task

    # --- the patient's answer ------------------------------------------------------------------

    def _consent_answered(self, session: Session, previous: dict[str, Any], consent: dict[str, Any]) -> None:
        """A referral's consent request approved: the referral no longer waits, and both
        institutions are told."""
        if previous.get("status") != "proposed" or consent.get("status") != "active":
            return
        task_ref = next((e.get("valueReference", {}).get("reference") for e in previous.get("extension") or []
                         if e.get("url") == REFERRAL_EXTENSION), None)
        if not task_ref:
            return
        repository = FhirRepository(session, _INTERNAL, AllowAllGate())
        try:
            stored = repository.read("Task", task_ref.removeprefix("Task/"))
        except FhirError:
            return
        task = dict(stored.content or {})
        task["businessStatus"] = CONSENT_GIVEN
        repository.write_internal("Task", stored.id, task)
        for org in {_org(task.get("owner")), _org(task.get("requester"))} - {None}:
            enqueue(session, f"referral:{task_ref}:consent-given:{org}", "referral-consent-given", f"Organization/{org}",
                    {"task": task_ref, "consent": f"Consent/{consent['id']}"})
