"""Who may decide about a patient's consents: the patient, or someone acting for them.

- The patient decides for themselves once they are of age where their records are held.
- A parent or guardian decides for a child under the age at which the child decides alone:
  under 16 in Hong Kong (eHealth: a substitute decision maker acts for patients under 16),
  under 18 in Macao (SSM: under-18s need a guardian's consent), under 14 on the mainland
  (PIPL Art. 28 and 31: a child under 14 needs a parent's or guardian's consent). A child
  with documents of several jurisdictions is protected by the highest of their ages.
- A court- or board-appointed guardian, or an attorney for health decisions, decides for an
  adult lacking capacity (Hong Kong's Guardianship Board; eHealth's substitute decision
  maker for patients lacking capacity). Facts: ``../shared/reference/consent-law.md``.

A person acting for another is a RelatedPerson recorded by an institution: ``patient``, an
active ``relationship`` below, ``active`` not false and a ``period`` covering today.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir_exchange.identity.documents import document_for, naming_systems

ROLE_CODES = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
PARENTS = frozenset({"PRN", "MTH", "FTH", "NPRN", "STPPRN", "ADOPTP", "FTHFOST", "MTHFOST"})
GUARDIANS = frozenset({"GUARD"})
ATTORNEYS = frozenset({"HPOWATT", "DPOWATT", "POWATT"})
# The age below which a guardian decides, per jurisdiction of an identity document.
AGE_OF_CONSENT = {"HK": 16, "MO": 18, "CN": 14}
DEFAULT_AGE_OF_CONSENT = 18


@dataclass(frozen=True, slots=True)
class Authority:
    """What someone signed in may do for a patient."""

    patient: str  # the Patient id
    acting: str  # the reference of whoever acts: Patient/… or RelatedPerson/…
    basis: str  # self | parent | guardian | attorney
    allowed: bool
    why: str  # a message key (consent/web/messages.py) when refused


def age_on(birth_date: str | None, today: date) -> int | None:
    if not birth_date or len(birth_date) < 10:
        return None
    born = date.fromisoformat(birth_date[:10])
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _document_jurisdictions() -> dict[str, frozenset[str]]:
    places = {}
    for system in naming_systems():
        codes = frozenset(c["code"] for j in system.get("jurisdiction") or [] for c in j.get("coding") or [])
        for unique in system.get("uniqueId") or []:
            places[unique["value"]] = codes
    return places


_PLACES = _document_jurisdictions()


def age_of_consent(patient: dict[str, Any]) -> int:
    """The age at which this patient decides alone: the highest over the jurisdictions of
    their identity documents (a document valid in several places counts for none of them
    alone), or 18 if none tells."""
    ages = []
    for identifier in patient.get("identifier") or []:
        places = _PLACES.get(identifier.get("system") or "")
        document = document_for(identifier.get("system"))
        if places and document is not None and len(places) == 1:
            ages.append(AGE_OF_CONSENT.get(next(iter(places)), DEFAULT_AGE_OF_CONSENT))
    return max(ages) if ages else DEFAULT_AGE_OF_CONSENT


def is_minor(patient: dict[str, Any], today: date) -> bool:
    age = age_on(patient.get("birthDate"), today)
    return age is not None and age < age_of_consent(patient)


def _relationships(related: dict[str, Any]) -> set[str]:
    return {c.get("code") for r in related.get("relationship") or [] for c in r.get("coding") or []
            if c.get("system") == ROLE_CODES}


def _current(related: dict[str, Any], today: date) -> bool:
    if related.get("active") is False:
        return False
    period = related.get("period") or {}
    start, end = period.get("start"), period.get("end")
    return (not start or start[:10] <= today.isoformat()) and (not end or today.isoformat() <= end[:10])


def authority_of_self(patient: dict[str, Any], today: date) -> Authority:
    acting = f"Patient/{patient['id']}"
    if is_minor(patient, today):
        return Authority(patient["id"], acting, "self", False, "refused_minor")
    if patient.get("deceasedBoolean") is True or patient.get("deceasedDateTime"):
        return Authority(patient["id"], acting, "self", False, "refused_deceased")
    return Authority(patient["id"], acting, "self", True, "")


def authority_of_related(related: dict[str, Any], patient: dict[str, Any], today: date) -> Authority:
    """May this RelatedPerson decide for ``patient`` today?"""
    acting = f"RelatedPerson/{related['id']}"
    codes = _relationships(related)
    if not _current(related, today):
        return Authority(patient["id"], acting, "guardian", False, "refused_not_current")
    minor = is_minor(patient, today)
    if minor and codes & (PARENTS | GUARDIANS | ATTORNEYS):
        basis = "parent" if codes & PARENTS else "guardian"
        return Authority(patient["id"], acting, basis, True, "")
    if not minor and codes & (GUARDIANS | ATTORNEYS):
        return Authority(patient["id"], acting, "attorney" if codes & ATTORNEYS else "guardian", True, "")
    if codes & PARENTS:
        return Authority(patient["id"], acting, "parent", False, "refused_child_of_age")
    return Authority(patient["id"], acting, "guardian", False, "refused_no_authority")
