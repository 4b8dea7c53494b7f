"""The consent decision engine: a request and a resource in, a decision out. Pure: no
database, no clock of its own (``now`` is given), so every rule is tested directly.

The rules (facts and sources: ``../shared/reference/consent-law.md``):

1. The custodian institution always sees its own records.
2. Anything else is denied unless a patient's active Consent permits it (the IHE PCF "deny
   all" implicit policy; ``ImplicitPolicy.PERMIT`` is the configurable alternative).
3. A Consent (R4, scope patient-privacy) decides through its provision tree: the root
   provision's type applies where it matches, and a matching nested provision is an
   exception that overrides its parent. A provision matches when every constraint it states
   holds: period, actor (an institution, or a class such as a jurisdiction or a designation),
   action (access/disclose), purpose, class (resource types), code (data categories),
   dataPeriod and, for deny, securityLabel.
4. Any applicable deny wins over every permit, across all Consents.
5. Crossing the boundary (HK ↔ mainland, MO ↔ mainland, HK ↔ MO) needs a permit that says so:
   the cross-border extension on the deciding provision or one above it (PIPL Art. 38–39;
   GBA Standard Contract).
6. Data labelled sensitive (mental health, sexual and reproductive health, HIV, genetics,
   substance use) is released only by a permit that names each of its labels in
   ``securityLabel`` (PIPL Art. 28–29).
7. A Patient resource released across the boundary is masked: identity document numbers of
   other jurisdictions are removed.
8. Break-glass: purpose ETREAT, a role granted it, and a stated reason release what treats
   an emergency (allergies, medicines, problems, recent results) and nothing else, without a
   consent (PIPL Art. 13; Macao's emergency access).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from fhir_exchange.ports import Release

CROSS_BORDER_URL = "http://baylink.example.org/fhir/StructureDefinition/consent-cross-border"
RECIPIENT_CLASS = "http://baylink.example.org/fhir/sid/recipient-class"
DATA_CATEGORY = "http://baylink.example.org/fhir/CodeSystem/data-category"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
BREAK_GLASS_ROLE = "break-glass"
EMERGENCY_CATEGORIES = frozenset({"allergies", "medications", "problems", "results"})
RECENT_RESULTS = timedelta(days=365)
RELEASE_ACTIONS = {"access", "disclose", "use"}

# What kind of data each resource type is, as Consent.provision.code names it.
CATEGORIES: dict[str, str] = {
    "AllergyIntolerance": "allergies",
    "MedicationRequest": "medications", "MedicationStatement": "medications", "MedicationDispense": "medications",
    "MedicationAdministration": "medications", "Medication": "medications",
    "Condition": "problems",
    "Observation": "results", "DiagnosticReport": "results", "Specimen": "results", "ImagingStudy": "imaging",
    "DocumentReference": "documents", "Composition": "documents", "Binary": "documents",
    "Encounter": "encounters", "EpisodeOfCare": "encounters",
    "Procedure": "procedures", "Immunization": "immunizations",
    "CarePlan": "care-plans", "ServiceRequest": "referrals", "Task": "referrals",
    "Patient": "demographics", "RelatedPerson": "demographics",
    "Coverage": "financial", "Claim": "financial", "ExplanationOfBenefit": "financial",
}


class ImplicitPolicy(enum.Enum):
    DENY = "deny"  # IHE PCF "deny all" (the default)
    PERMIT = "permit"  # IHE PCF "permit all": a patient opts out with deny provisions


def country(jurisdiction: str | None) -> str | None:
    return jurisdiction.split("-")[0] if jurisdiction else None


@dataclass(frozen=True, slots=True)
class Requester:
    institution: str | None
    jurisdiction: str | None
    classes: frozenset[str] = frozenset()  # e.g. "jurisdiction:CN", "designated:ehcv", "sector:HA"
    purpose: str = "TREAT"
    roles: frozenset[str] = frozenset()
    break_glass_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Subject:
    """What the engine needs to know of the resource asked for."""

    resource_type: str
    patient: str | None
    custodian: str | None
    custodian_jurisdiction: str | None
    security_labels: frozenset[str] = frozenset()
    when: date | None = None  # the clinically relevant date (for dataPeriod and "recent")

    @property
    def category(self) -> str:
        return CATEGORIES.get(self.resource_type, "other")


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Release
    reason: str
    consent: str | None = None  # "Consent/<id>" that decided, if one did
    provision: str | None = None  # its path, e.g. "provision.provision[1]"
    mask: bool = False
    break_glass: bool = False


@dataclass(frozen=True, slots=True)
class _Verdict:
    type: str  # permit | deny
    path: str
    cross_border: bool
    labels: frozenset[str] = field(default_factory=frozenset)


def crosses_boundary(a: str | None, b: str | None) -> bool:
    return country(a) is not None and country(b) is not None and country(a) != country(b)


def _period_covers(period: dict[str, Any] | None, moment: date) -> bool:
    if not period:
        return True
    start, end = period.get("start"), period.get("end")
    return (not start or start[:10] <= moment.isoformat()) and (not end or moment.isoformat() <= end[:10])


def _codes(codeable: Sequence[dict[str, Any]] | None, system: str | None = None) -> set[str]:
    found = set()
    for item in codeable or []:
        for coding in item.get("coding") or ([item] if "code" in item else []):
            if system is None or coding.get("system") == system:
                found.add(coding.get("code"))
    return found


def _actor_matches(actors: Sequence[dict[str, Any]], requester: Requester) -> bool:
    for actor in actors:
        reference = actor.get("reference") or {}
        if requester.institution and reference.get("reference") == f"Organization/{requester.institution}":
            return True
        identifier = reference.get("identifier") or {}
        if identifier.get("system") == RECIPIENT_CLASS and identifier.get("value") in requester.classes:
            return True
    return False


def _matches(provision: dict[str, Any], requester: Requester, subject: Subject, today: date) -> bool:
    if not _period_covers(provision.get("period"), today):
        return False
    if provision.get("actor") and not _actor_matches(provision["actor"], requester):
        return False
    actions = _codes(provision.get("action"))
    if actions and not actions & RELEASE_ACTIONS:
        return False
    purposes = {c.get("code") for c in provision.get("purpose") or []}
    if purposes and requester.purpose not in purposes:
        return False
    classes = {c.get("code") for c in provision.get("class") or [] if c.get("system") in (None, RESOURCE_TYPES)}
    if classes and subject.resource_type not in classes:
        return False
    categories = _codes(provision.get("code"), DATA_CATEGORY)
    if categories and subject.category not in categories:
        return False
    if provision.get("dataPeriod") and (subject.when is None or not _period_covers(provision["dataPeriod"], subject.when)):
        return False
    if provision.get("type") == "deny" and provision.get("securityLabel"):
        # a deny naming labels applies to data carrying any of them
        return bool({c.get("code") for c in provision["securityLabel"]} & subject.security_labels)
    return True


def _evaluate(provision: dict[str, Any], path: str, requester: Requester, subject: Subject, today: date,
              inherited_cross_border: bool) -> _Verdict | None:
    if not _matches(provision, requester, subject, today):
        return None
    cross_border = inherited_cross_border or any(
        e.get("url") == CROSS_BORDER_URL and e.get("valueBoolean") is True for e in provision.get("extension") or [])
    verdict = _Verdict(provision.get("type") or "permit", path, cross_border,
                       frozenset(c.get("code") for c in provision.get("securityLabel") or []))
    exceptions = [
        v for i, nested in enumerate(provision.get("provision") or [])
        if (v := _evaluate(nested, f"{path}.provision[{i}]", requester, subject, today, cross_border)) is not None
    ]
    denies = [v for v in exceptions if v.type == "deny"]
    if denies:
        return denies[0]
    return exceptions[0] if exceptions else verdict


def applies_to(consent: dict[str, Any], patient: str | None, today: date) -> bool:
    """An active patient-privacy Consent of this patient, in its period."""
    if consent.get("status") != "active" or not patient:
        return False
    if (consent.get("patient") or {}).get("reference") != f"Patient/{patient}":
        return False
    scope = _codes([consent.get("scope") or {}])
    if scope and "patient-privacy" not in scope:
        return False
    return _period_covers((consent.get("provision") or {}).get("period"), today)


def decide(requester: Requester, subject: Subject, consents: Sequence[dict[str, Any]], now: datetime,
           implicit: ImplicitPolicy = ImplicitPolicy.DENY) -> Decision:
    today = now.date()
    if subject.custodian is not None and subject.custodian == requester.institution:
        return Decision(Release.PERMIT, "the custodian institution sees its own records")
    across = crosses_boundary(subject.custodian_jurisdiction, requester.jurisdiction)
    verdicts: list[tuple[str, _Verdict]] = []
    for consent in consents:
        if not applies_to(consent, subject.patient, today):
            continue
        verdict = _evaluate(consent.get("provision") or {}, "provision", requester, subject, today, False)
        if verdict is not None:
            verdicts.append((f"Consent/{consent.get('id')}", verdict))
    for consent_ref, verdict in verdicts:
        if verdict.type == "deny":
            return Decision(Release.DENY, "the patient's consent denies it", consent_ref, verdict.path)
    for consent_ref, verdict in verdicts:
        if across and not verdict.cross_border:
            continue
        if not subject.security_labels <= verdict.labels:
            continue
        return Decision(Release.PERMIT_WITH_MASKING if across and subject.resource_type == "Patient" else Release.PERMIT,
                        "the patient's consent permits it", consent_ref, verdict.path,
                        mask=across and subject.resource_type == "Patient")
    if _break_glass(requester, subject, now):
        return Decision(Release.PERMIT_WITH_MASKING if across and subject.resource_type == "Patient" else Release.PERMIT,
                        f"break-glass: {requester.break_glass_reason}", mask=across and subject.resource_type == "Patient",
                        break_glass=True)
    if verdicts:
        permit = verdicts[0][1]
        why = ("it crosses the boundary and no consent allows cross-border release" if across and not permit.cross_border
               else "it is labelled sensitive and no consent names that category")
        return Decision(Release.DENY, why, verdicts[0][0], permit.path)
    if implicit is ImplicitPolicy.PERMIT and not across and not subject.security_labels:
        return Decision(Release.PERMIT, "no consent applies; the deployment's implicit policy permits")
    return Decision(Release.DENY, "no active consent of the patient permits it (deny by default)")


def dates_matter(requester: Requester, consents: Sequence[dict[str, Any]]) -> bool:
    """Whether ``decide`` can look at ``Subject.when`` for this requester and these Consents:
    only a provision with a dataPeriod, or break-glass (recent results), does. Where it does
    not, two subjects that differ only in ``when`` get the same decision (the consent gate
    decides such resources once). Keep in step with ``_matches`` and ``_break_glass``."""
    if requester.purpose == "ETREAT" and BREAK_GLASS_ROLE in requester.roles and requester.break_glass_reason:
        return True
    return any(_has_data_period(consent.get("provision") or {}) for consent in consents)


def _has_data_period(provision: dict[str, Any]) -> bool:
    return bool(provision.get("dataPeriod")) or any(_has_data_period(p) for p in provision.get("provision") or [])


def _break_glass(requester: Requester, subject: Subject, now: datetime) -> bool:
    if requester.purpose != "ETREAT" or BREAK_GLASS_ROLE not in requester.roles or not requester.break_glass_reason:
        return False
    if subject.category == "demographics":
        return True  # who the patient is, to treat them
    if subject.category not in EMERGENCY_CATEGORIES or subject.security_labels:
        return False
    if subject.category == "results":
        return subject.when is not None and subject.when >= (now - RECENT_RESULTS).date()
    return True


def mask_identifiers(resource: dict[str, Any], recipient_jurisdiction: str | None,
                     jurisdictions_of: Callable[[str | None], frozenset[str] | None]) -> dict[str, Any]:
    """The Patient without identity document numbers of jurisdictions other than the
    recipient's (``jurisdictions_of(system)`` gives a document's jurisdictions, None for an
    identifier that is not an identity document)."""
    wanted = country(recipient_jurisdiction)
    kept = []
    for identifier in resource.get("identifier") or []:
        places = jurisdictions_of(identifier.get("system"))
        if places is None or wanted in places:
            kept.append(identifier)
    masked = {k: v for k, v in resource.items() if k != "identifier"}
    if kept:
        masked["identifier"] = kept
    masked.setdefault("meta", {})
    masked["meta"] = {**masked["meta"], "security": [*(masked["meta"].get("security") or []), {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "MASKED", "display": "masked"}]}
    return masked
