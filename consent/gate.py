"""The release gate BayLink runs with: ``fhir_exchange``'s ReleaseGate port, implemented with
the pure decision engine (policy.py) over what the database says at the time of the request.

Per request it loads, once each: the requester's institution (jurisdiction and designations,
from the registry), each custodian institution, and each patient's Consents, in one session
per batch of resources (``decide_many``). Nothing read or decided is kept for another request
(only where each registry entry is stored, a hint checked on every use), so a withdrawal takes
effect on the very next request. Resources that belong to no patient (Organization,
CodeSystem, …) are not the patient's data and pass.

Within a request, resources that the engine cannot tell apart (same type, patient, custodian,
sensitivity labels and, where a Consent or break-glass looks at it, clinical date) get the
same decision, so it is made once. The request is decided as of one instant, its first
decision's.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from consent.labels import SensitivityLabeller
from consent.policy import ImplicitPolicy, Requester, Subject, dates_matter, decide, mask_identifiers
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
                              scopes=("system/Organization.rs", "system/Consent.rs", "system/Patient.rs"))
_REQUEST_CACHE = 256  # requests whose lookups are kept (a request's own lookups are reused, never another's)
_NOT_PATIENT_DATA = "not a patient's data"
_CUSTODIAN = "the custodian institution sees its own records"
_SEARCH_ESCAPE = re.compile(r"([\\,$|])")


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


def _any_of(values: Sequence[str]) -> str:
    """Search values OR-ed (search.html#escaping: a comma inside a value is escaped)."""
    return ",".join(_SEARCH_ESCAPE.sub(r"\\\1", value) for value in values)


def _search_ids(repository: FhirRepository, keys: Sequence[tuple[str, str]]) -> list[int]:
    """Where the resources named by (type, id) are stored: one search per type."""
    ids: dict[str, list[str]] = {}
    for resource_type, resource_id in keys:
        ids.setdefault(resource_type, []).append(resource_id)
    return [pk for resource_type, wanted in ids.items()
            for pk in repository.search_pks(SearchParser().parse(resource_type, [("_id", _any_of(wanted))]))]


def _consents_of(repository: FhirRepository, patients: set[str]) -> list[int]:
    if not patients:
        return []
    references = _any_of([f"Patient/{p}" for p in sorted(patients)])
    return repository.search_pks(SearchParser().parse("Consent", [("patient", references)]))


@dataclass(slots=True)
class _Request:
    """One request's lookups and decisions. Never shared with another request."""

    now: datetime
    requester: Requester | None = None
    institutions: dict[str | None, tuple[str | None, frozenset[str]]] = field(default_factory=dict)
    consents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dates_matter: dict[str, bool] = field(default_factory=dict)  # per patient
    labels: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)  # per coding
    # (type, patient, custodian, labels, date or None) -> (outcome, reason, mask)
    decisions: dict[tuple[Any, ...], tuple[Release, str, bool]] = field(default_factory=dict)


class ConsentGate:
    # rule 1 of the engine: the custodian institution sees its own records, whole
    releases_own_records = True

    def __init__(self, sessions: Callable[[], Session], *, implicit: ImplicitPolicy = ImplicitPolicy.DENY,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.sessions = sessions
        self.implicit = implicit
        self.clock = clock
        self.labeller = SensitivityLabeller(sessions)
        self._documents = _document_jurisdictions()
        self._lock = threading.Lock()
        self._requests: OrderedDict[str, _Request] = OrderedDict()
        # where each registry entry and each patient's record is stored (a resource keeps its
        # pk): a hint to read it without searching, checked on every use; content is read afresh
        self._stored_at: dict[tuple[str, str], int] = {}

    # --- per-request lookups -------------------------------------------------------------------

    def _request(self, context: RequestContext) -> _Request:
        memo = self._requests.get(context.request_id)
        if memo is not None:
            return memo
        with self._lock:
            memo = self._requests.get(context.request_id)
            if memo is None:
                memo = self._requests[context.request_id] = _Request(self.clock())
                while len(self._requests) > _REQUEST_CACHE:
                    self._requests.popitem(last=False)
            return memo

    def _look_up(self, memo: _Request, institutions: set[str], patients: set[str]) -> None:
        """Loads, in one session, the registry entries of ``institutions`` and the Consents of
        ``patients`` (and of the records linked to theirs) that this request has not loaded
        yet, as the gate's own operator: it decides, it releases nothing itself."""
        institutions = {i for i in institutions if i not in memo.institutions}
        patients = {p for p in patients if p not in memo.consents}
        if not institutions and not patients:
            return
        wanted = [("Organization", i) for i in sorted(institutions)] + [("Patient", p) for p in sorted(patients)]
        with self.sessions() as session:
            if session.get_bind().dialect.name == "postgresql":
                # reads whose order does not matter: no transaction to open and end (two round trips)
                session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            repository = FhirRepository(session, GATE_CONTEXT, AllowAllGate())
            unhinted = [key for key in wanted if key not in self._stored_at]
            pks = [self._stored_at[key] for key in wanted if key in self._stored_at]
            pks += _search_ids(repository, unhinted)
            # every status: the engine itself passes over those not active (a search on
            # status too costs the database more than the few rows it spares)
            consent_pks = set(_consents_of(repository, patients))
            found = repository.load(list(dict.fromkeys([*pks, *consent_pks])))
            records = {(s.resource_type, s.id): s for s in found if s.content and s.pk not in consent_pks}
            stale = [key for key in wanted if key not in records and key not in unhinted]
            if stale:  # a hint that no longer holds: search as for a record never seen
                loaded = repository.load(_search_ids(repository, stale))
                records |= {(s.resource_type, s.id): s for s in loaded if s.content}
            # the same person's other records (Patient.link, written by record linkage for
            # certain matches and by merges): a consent given on any of them is the person's
            linked: dict[str, set[str]] = {p: {p} for p in patients}
            for patient in patients:
                record = records.get(("Patient", patient))
                for link in (record.content or {}).get("link") or [] if record else []:
                    other = ((link.get("other") or {}).get("reference") or "")
                    if other.startswith("Patient/"):
                        linked[patient].add(other.removeprefix("Patient/"))
            others = set().union(*linked.values()) - patients
            if others:
                more = set(_consents_of(repository, others)) - consent_pks
                consent_pks |= more
                found += repository.load(sorted(more))
        for key in wanted:
            if key in records:
                self._stored_at[key] = records[key].pk
            else:
                self._stored_at.pop(key, None)
        if len(self._stored_at) > 100_000:
            self._stored_at.clear()
        today = memo.now.date()
        for institution in institutions:
            stored = records.get(("Organization", institution))
            if stored is None or stored.content is None:
                memo.institutions[institution] = (None, frozenset())
                continue
            entry = institution_from_resource(stored.content)
            classes = {f"jurisdiction:{entry.jurisdiction.split('-')[0]}",
                       f"jurisdiction:{entry.jurisdiction}"} if entry.jurisdiction else set()
            classes |= {f"designated:{d.programme}" for d in entry.designations if d.start and d.active_on(today)}
            if entry.sector:
                classes.add(f"sector:{entry.sector}")  # e.g. "sector:HA", the Hospital Authority
            memo.institutions[institution] = (entry.jurisdiction or None, frozenset(classes))
        for patient in patients:
            memo.consents[patient] = []
        for stored in found:
            consent = stored.content
            if stored.pk not in consent_pks or not consent or consent.get("status") != "active":
                continue
            reference = (consent.get("patient") or {}).get("reference")
            owner = reference.removeprefix("Patient/") if isinstance(reference, str) else None
            for patient in patients:
                if owner == patient:
                    memo.consents[patient].append(consent)
                elif owner in linked.get(patient, ()):
                    # the person's consent, given on their record at another institution
                    memo.consents[patient].append({**consent, "patient": {"reference": f"Patient/{patient}"}})

    # --- the port -------------------------------------------------------------------------------

    def decide(self, context: RequestContext, resource: dict[str, Any]) -> ReleaseDecision:
        return self.decide_many(context, [resource])[0]

    def decide_many(self, context: RequestContext, resources: Sequence[dict[str, Any]]) -> list[ReleaseDecision]:
        """``decide`` for each of ``resources``, in order, with one read of the store for all
        the Consents and registry entries they need."""
        decisions: list[ReleaseDecision | None] = []
        pending: list[tuple[int, dict[str, Any], str, tuple[str, ...], str | None]] = []
        for resource in resources:
            resource_type = resource.get("resourceType", "")
            patients = patients_of(resource_type, resource.get("id", ""), resource)
            if not patients:
                decisions.append(ReleaseDecision(Release.PERMIT, resource, _NOT_PATIENT_DATA))
                continue
            custodian = custodian_of(resource)
            if custodian is not None and custodian == context.institution:
                decisions.append(ReleaseDecision(Release.PERMIT, resource, _CUSTODIAN))
                continue
            pending.append((len(decisions), resource, resource_type, tuple(sorted(patients)), custodian))
            decisions.append(None)
        if pending:
            memo = self._request(context)
            self._look_up(memo, {i for i in (context.institution, *(p[4] for p in pending)) if i is not None},
                          {patient for p in pending for patient in p[3]})
            for position, resource, resource_type, patients_of_resource, custodian in pending:
                # a resource about several patients (a Group, an Appointment for two) is
                # released only if every one of them allows it
                each = [self._decide(memo, context, resource, resource_type, patient, custodian)
                        for patient in patients_of_resource]
                decisions[position] = next((d for d in each if d.outcome is Release.DENY), each[0])
        return decisions  # type: ignore[return-value]  # every position is filled

    def _decide(self, memo: _Request, context: RequestContext, resource: dict[str, Any], resource_type: str,
                patient: str, custodian: str | None) -> ReleaseDecision:
        jurisdiction, classes = memo.institutions.get(context.institution, (None, frozenset()))
        if memo.requester is None:
            memo.requester = Requester(context.institution, jurisdiction, classes, context.purpose_of_use,
                                       frozenset(context.roles), context.reason)
        consents = memo.consents[patient]
        if patient not in memo.dates_matter:
            memo.dates_matter[patient] = dates_matter(memo.requester, consents)
        labels = self.labeller.labels(resource, memo.labels)
        when = resource_date(resource) if memo.dates_matter[patient] else None
        key = (resource_type, patient, custodian, labels, when)
        known = memo.decisions.get(key)
        if known is None:
            custodian_jurisdiction = memo.institutions.get(custodian, (None, frozenset()))[0]
            subject = Subject(resource_type, patient, custodian, custodian_jurisdiction, labels, resource_date(resource))
            decision = decide(memo.requester, subject, consents, memo.now, self.implicit)
            reason = decision.reason + (f" ({decision.consent} {decision.provision})" if decision.consent else "")
            known = memo.decisions[key] = (decision.outcome, reason, decision.mask)
        outcome, reason, mask = known
        if outcome is Release.DENY:
            return ReleaseDecision(Release.DENY, None, reason)
        if mask:
            masked = mask_identifiers(resource, jurisdiction, lambda system: self._documents.get(system or ""))
            return ReleaseDecision(Release.PERMIT_WITH_MASKING, masked, reason)
        return ReleaseDecision(outcome, resource, reason)
