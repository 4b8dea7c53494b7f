"""The release gate BayLink runs with: ``fhir_exchange``'s ReleaseGate port, implemented with
the pure decision engine (policy.py) over what the database says at the time of the request.

Per request it loads, once each: the requester's institution (jurisdiction and designations,
from the registry), and each patient's Consents. Nothing is cached across requests, so a
withdrawal takes effect on the very next request. Resources that belong to no patient
(Organization, CodeSystem, …) are not the patient's data and pass.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from consent.labels import SensitivityLabeller
from consent.policy import ImplicitPolicy, Requester, Subject, decide, mask_identifiers
from fhir_exchange.audit.trail import patients_of
from fhir_exchange.identity.documents import naming_systems
from fhir_exchange.institutions.registry import institution_from_resource
from fhir_exchange.ports import AllowAllGate, Release, ReleaseDecision, RequestContext
from fhir_exchange.search.params import SearchParser
from fhir_exchange.store.repository import FhirRepository, custodian_of

# The clinically relevant date of a resource, for dataPeriod and "recent results".
_DATE_FIELDS = ("effectiveDateTime", "issued", "recordedDate", "onsetDateTime", "authoredOn", "date", "occurrenceDateTime",
                "performedDateTime", "whenHandedOver")
GATE_CONTEXT = RequestContext(request_id="consent-gate", client_id="baylink-consent-gate", purpose_of_use="HOPERAT",
                              scopes=("system/Organization.rs", "system/Consent.rs"))
_REQUEST_CACHE = 256  # requests whose lookups are kept (a request's own lookups are reused, never another's)


def resource_date(resource: dict[str, Any]) -> date | None:
    for name in _DATE_FIELDS:
        value = resource.get(name)
        if isinstance(value, str) and len(value) >= 10:
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                return None
    period = resource.get("effectivePeriod") or resource.get("period") or {}
    start = period.get("start") if isinstance(period, dict) else None
    return date.fromisoformat(start[:10]) if isinstance(start, str) and len(start) >= 10 else None


def _document_jurisdictions() -> dict[str, frozenset[str]]:
    places: dict[str, frozenset[str]] = {}
    for system in naming_systems():
        codes = frozenset(c["code"] for j in system.get("jurisdiction") or [] for c in j.get("coding") or [])
        for unique in system.get("uniqueId") or []:
            places[unique["value"]] = codes
    return places


class ConsentGate:
    def __init__(self, sessions: Callable[[], Session], *, implicit: ImplicitPolicy = ImplicitPolicy.DENY,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.sessions = sessions
        self.implicit = implicit
        self.clock = clock
        self.labeller = SensitivityLabeller(sessions)
        self._documents = _document_jurisdictions()
        self._lock = threading.Lock()
        self._requests: OrderedDict[str, dict[Any, Any]] = OrderedDict()

    # --- per-request lookups -------------------------------------------------------------------

    def _memo(self, context: RequestContext) -> dict[Any, Any]:
        with self._lock:
            memo = self._requests.get(context.request_id)
            if memo is None:
                memo = self._requests[context.request_id] = {}
                while len(self._requests) > _REQUEST_CACHE:
                    self._requests.popitem(last=False)
            return memo

    def _search(self, resource_type: str, criteria: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """What the store holds, read through fhir_exchange's repository (as the gate's own
        operator: it decides, it releases nothing itself)."""
        with self.sessions() as session:
            repository = FhirRepository(session, GATE_CONTEXT, AllowAllGate())
            query = SearchParser().parse(resource_type, criteria)
            return [s.content for s in repository.load(repository.search_pks(query)) if s.content]

    def _institution(self, memo: dict[Any, Any], org_id: str | None) -> tuple[str | None, frozenset[str]]:
        """(jurisdiction, recipient classes) of an institution, from the registry."""
        key = ("org", org_id)
        if key not in memo:
            if org_id is None:
                memo[key] = (None, frozenset())
            else:
                found = self._search("Organization", [("_id", org_id)])
                if not found:
                    memo[key] = (None, frozenset())
                else:
                    institution = institution_from_resource(found[0])
                    today = self.clock().date()
                    classes = {f"jurisdiction:{institution.jurisdiction.split('-')[0]}",
                               f"jurisdiction:{institution.jurisdiction}"} if institution.jurisdiction else set()
                    classes |= {f"designated:{d.programme}" for d in institution.designations if d.start and d.active_on(today)}
                    memo[key] = (institution.jurisdiction or None, frozenset(classes))
        return memo[key]

    def _consents(self, memo: dict[Any, Any], patient: str) -> list[dict[str, Any]]:
        key = ("consents", patient)
        if key not in memo:
            memo[key] = self._search("Consent", [("patient", f"Patient/{patient}"), ("status", "active")])
        return memo[key]

    # --- the port -------------------------------------------------------------------------------

    def decide(self, context: RequestContext, resource: dict[str, Any]) -> ReleaseDecision:
        resource_type = resource.get("resourceType", "")
        patients = patients_of(resource_type, resource.get("id", ""), resource)
        if not patients:
            return ReleaseDecision(Release.PERMIT, resource, "not a patient's data")
        custodian = custodian_of(resource)
        if custodian is not None and custodian == context.institution:
            return ReleaseDecision(Release.PERMIT, resource, "the custodian institution sees its own records")
        memo = self._memo(context)
        jurisdiction, classes = self._institution(memo, context.institution)
        custodian_jurisdiction, _ = self._institution(memo, custodian)
        requester = Requester(context.institution, jurisdiction, classes, context.purpose_of_use,
                              frozenset(context.roles), context.reason)
        patient = sorted(patients)[0]
        subject = Subject(resource_type, patient, custodian, custodian_jurisdiction,
                          self.labeller.labels(resource), resource_date(resource))
        decision = decide(requester, subject, self._consents(memo, patient), self.clock(), self.implicit)
        reason = f"{decision.reason}" + (f" ({decision.consent} {decision.provision})" if decision.consent else "")
        if decision.outcome is Release.DENY:
            return ReleaseDecision(Release.DENY, None, reason)
        if decision.mask:
            masked = mask_identifiers(resource, jurisdiction, lambda system: self._documents.get(system or ""))
            return ReleaseDecision(Release.PERMIT_WITH_MASKING, masked, reason)
        return ReleaseDecision(decision.outcome, resource, reason)
