"""The release gate BayLink runs with: ``fhir_exchange``'s ReleaseGate port, implemented with
the pure decision engine (policy.py) over what the database says at the time of the request.

Per request it loads, once each and in one statement: the requester's institution
(jurisdiction and designations, from the registry), each custodian institution, each patient's
record and Consents (``decide_many``, ``decide_facts``). Nothing read or decided is kept for
another request, so a withdrawal takes effect on the very next request. Resources that belong to no patient (Organization,
CodeSystem, …) are not the patient's data and pass.

It decides on a resource's release facts (``fhir_exchange.release_facts``): the store keeps
them with each version, so a search's matches are counted without reading their content.
Within a request, resources that the engine cannot tell apart (same type, patient, custodian,
sensitivity labels and, where a Consent or break-glass looks at it, clinical date) get the
same decision, so it is made once. The request is decided as of one instant, its first
decision's.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from consent.labels import SensitivityLabeller
from consent.policy import ImplicitPolicy, Requester, Subject, dates_matter, decide, mask_identifiers
from fhir_exchange.identity.documents import naming_systems
from fhir_exchange.institutions.registry import institution_from_resource
from fhir_exchange.ports import AllowAllGate, Release, ReleaseDecision, RequestContext
from fhir_exchange.release_facts import ReleaseFacts, facts_of
from fhir_exchange.store.repository import FhirRepository

GATE_CONTEXT = RequestContext(request_id="consent-gate", client_id="baylink-consent-gate", purpose_of_use="HOPERAT",
                              scopes=("system/Organization.rs", "system/Consent.rs", "system/Patient.rs"))
_REQUEST_CACHE = 256  # requests whose lookups are kept (a request's own lookups are reused, never another's)
_SESSION_KEY = "consent.gate.request"  # session.info: (request id, its memo)
_NOT_PATIENT_DATA = "not a patient's data"
_CUSTODIAN = "the custodian institution sees its own records"
_PASS_NOT_PATIENT_DATA = (Release.PERMIT, _NOT_PATIENT_DATA, False)
_PASS_CUSTODIAN = (Release.PERMIT, _CUSTODIAN, False)


def _document_jurisdictions() -> dict[str, frozenset[str]]:
    places: dict[str, frozenset[str]] = {}
    for system in naming_systems():
        codes = frozenset(c["code"] for j in system.get("jurisdiction") or [] for c in j.get("coding") or [])
        for unique in system.get("uniqueId") or []:
            places[unique["value"]] = codes
    return places


@dataclass(slots=True)
class _Request:
    """One request's lookups and decisions. Never shared with another request."""

    now: datetime
    requester: Requester | None = None
    institutions: dict[str | None, tuple[str | None, frozenset[str]]] = field(default_factory=dict)
    consents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dates_matter: dict[str, bool] = field(default_factory=dict)  # per patient
    labels: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)  # per coding
    labelled: dict[tuple[frozenset[str], tuple[tuple[str, str], ...]], frozenset[str]] = field(default_factory=dict)
    # (type, patient, custodian, labels, date or None) -> (outcome, reason, mask)
    decisions: dict[tuple[Any, ...], tuple[Release, str, bool]] = field(default_factory=dict)
    # a facts head (FactsReader) whose date no decision looks at -> the decision
    by_head: dict[str, tuple[Release, str, bool]] = field(default_factory=dict)


class ConsentGate:
    # rule 1 of the engine: the custodian institution sees its own records, whole
    releases_own_records = True
    # given the caller's session, it reads the registry and Consents in the caller's
    # transaction: the decision is made on what that request sees, and costs no connection
    reads_with_caller = True

    def __init__(self, sessions: Callable[[], Session], *, implicit: ImplicitPolicy = ImplicitPolicy.DENY,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.sessions = sessions
        self.implicit = implicit
        self.clock = clock
        self.labeller = SensitivityLabeller(sessions)
        self._documents = _document_jurisdictions()
        self._lock = threading.Lock()
        self._requests: OrderedDict[str, _Request] = OrderedDict()

    # --- per-request lookups -------------------------------------------------------------------

    def _request(self, context: RequestContext, session: Session | None = None) -> _Request:
        """The request's memo: kept with the caller's session when the gate reads through it (it
        then ends with the request, and keeps nothing alive after it), else among the last
        requests' few."""
        if session is not None:
            held = session.info.get(_SESSION_KEY)
            if held is None or held[0] != context.request_id:
                held = session.info[_SESSION_KEY] = (context.request_id, _Request(self.clock()))
            return held[1]
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

    @contextmanager
    def _reader(self, session: Session | None) -> Iterator[Session]:
        if session is not None:
            yield session
            return
        with self.sessions() as own:
            if own.get_bind().dialect.name == "postgresql":
                # reads whose order does not matter: no transaction to open and end (two round trips)
                own.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            yield own

    def _look_up(self, memo: _Request, institutions: set[str], patients: set[str], session: Session | None = None) -> None:
        """Loads, in one session, the registry entries of ``institutions`` and the Consents of
        ``patients`` (and of the records linked to theirs) that this request has not loaded
        yet, as the gate's own operator: it decides, it releases nothing itself."""
        institutions = {i for i in institutions if i not in memo.institutions}
        patients = {p for p in patients if p not in memo.consents}
        if not institutions and not patients:
            return
        wanted = [("Organization", i) for i in sorted(institutions)] + [("Patient", p) for p in sorted(patients)]
        with self._reader(session) as reader:
            repository = FhirRepository(reader, GATE_CONTEXT, AllowAllGate())
            # one statement: the registry entries, the patients' records and their Consents of
            # every status (the engine itself passes over those not active)
            found = repository.lookup(wanted, ("Consent", "patient", [f"Patient/{p}" for p in sorted(patients)]))
            keys = set(wanted)
            records = {(s.resource_type, s.id): s for s in found if (s.resource_type, s.id) in keys and s.content}
            consent_pks = {s.pk for s in found if s.resource_type == "Consent"}
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
                more = [s for s in repository.lookup([], ("Consent", "patient", [f"Patient/{p}" for p in sorted(others)]))
                        if s.pk not in consent_pks]
                consent_pks |= {s.pk for s in more}
                found += more
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

    def decide_many(self, context: RequestContext, resources: Sequence[dict[str, Any]], *,
                    session: Session | None = None) -> list[ReleaseDecision]:
        """``decide`` for each of ``resources``, in order, with one read of the store for all
        the Consents and registry entries they need. Decided on the resources' release facts
        (as ``decide_facts`` decides on the facts the store keeps), then masked where it masks."""
        facts = [facts_of(r.get("resourceType", ""), r.get("id", ""), r) for r in resources]
        decisions = []
        for resource, (outcome, reason, mask) in zip(resources, self._outcomes(context, facts, session), strict=True):
            if outcome is Release.DENY:
                decisions.append(ReleaseDecision(Release.DENY, None, reason))
            elif mask:
                jurisdiction = self._request(context, session).institutions.get(context.institution, (None,))[0]
                masked = mask_identifiers(resource, jurisdiction, lambda system: self._documents.get(system or ""))
                decisions.append(ReleaseDecision(Release.PERMIT_WITH_MASKING, masked, reason))
            else:
                decisions.append(ReleaseDecision(outcome, resource, reason))
        return decisions

    def decide_facts(self, context: RequestContext, facts: Sequence[ReleaseFacts], *,
                     session: Session | None = None) -> list[Release]:
        """The outcome for each resource known by its release facts (the store's
        ``resource.release_facts``): the same as ``decide_many`` on the resources."""
        return [Release.PERMIT_WITH_MASKING if mask and outcome is not Release.DENY else outcome
                for outcome, _, mask in self._outcomes(context, facts, session)]

    def decide_undated(self, context: RequestContext, facts: Sequence[ReleaseFacts], *,
                       session: Session | None = None) -> list[Release | None]:
        """``decide_facts`` for facts that stand for every date (``fhir_exchange.ports``): None
        for those about a patient whose Consents, or the requester's break-glass, look at dates."""
        outcomes = self.decide_facts(context, facts, session=session)
        memo: _Request | None = None
        undated: list[Release | None] = []
        for known, outcome in zip(facts, outcomes, strict=True):
            if known.patients and (known.custodian is None or known.custodian != context.institution):
                memo = memo or self._request(context, session)
                if any(memo.dates_matter.get(patient, True) for patient in known.patients):
                    outcome = None
            undated.append(outcome)
        return undated

    def _outcomes(self, context: RequestContext, facts: Sequence[ReleaseFacts],
                  session: Session | None = None) -> list[tuple[Release, str, bool]]:
        outcomes: list[tuple[Release, str, bool] | None] = []
        pending: list[int] = []
        institution = context.institution
        for position, known in enumerate(facts):
            if not known.patients:
                outcomes.append(_PASS_NOT_PATIENT_DATA)
            elif known.custodian is not None and known.custodian == institution:
                outcomes.append(_PASS_CUSTODIAN)
            else:
                pending.append(position)
                outcomes.append(None)
        if pending:
            memo = self._request(context, session)
            custodians = {facts[p].custodian for p in pending}
            self._look_up(memo, {i for i in (institution, *custodians) if i is not None},
                          {patient for p in pending for patient in facts[p].patients}, session)
            by_head = memo.by_head
            for position in pending:
                known = facts[position]
                head = known.head
                if head is not None:
                    outcome = by_head.get(head)
                    if outcome is not None:  # the same facts but for a date no one looks at
                        outcomes[position] = outcome
                        continue
                # a resource about several patients (a Group, an Appointment for two) is
                # released only if every one of them allows it
                each = [self._decide(memo, context, known, patient) for patient in known.patients]
                outcome = outcomes[position] = next((d for d in each if d[0] is Release.DENY), each[0])
                if head is not None and not any(memo.dates_matter[patient] for patient in known.patients):
                    by_head[head] = outcome
        return outcomes  # type: ignore[return-value]  # every position is filled

    def _decide(self, memo: _Request, context: RequestContext, facts: ReleaseFacts, patient: str) -> tuple[Release, str, bool]:
        if memo.requester is None:
            jurisdiction, classes = memo.institutions.get(context.institution, (None, frozenset()))
            memo.requester = Requester(context.institution, jurisdiction, classes, context.purpose_of_use,
                                       frozenset(context.roles), context.reason)
        consents = memo.consents[patient]
        matters = memo.dates_matter.get(patient)
        if matters is None:
            matters = memo.dates_matter[patient] = dates_matter(memo.requester, consents)
        coded = (facts.security, facts.codings)
        labels = memo.labelled.get(coded)
        if labels is None:
            labels = memo.labelled[coded] = self.labeller.labels_of(facts.security, facts.codings, memo.labels)
        key = (facts.resource_type, patient, facts.custodian, labels, facts.clinical_date if matters else None)
        known = memo.decisions.get(key)
        if known is None:
            custodian_jurisdiction = memo.institutions.get(facts.custodian, (None, frozenset()))[0]
            subject = Subject(facts.resource_type, patient, facts.custodian, custodian_jurisdiction, labels,
                              facts.clinical_date)
            decision = decide(memo.requester, subject, consents, memo.now, self.implicit)
            reason = decision.reason + (f" ({decision.consent} {decision.provision})" if decision.consent else "")
            known = memo.decisions[key] = (decision.outcome, reason, decision.mask)
        return known
