"""Is this the same person? Scoring a Patient against candidates (IHE PDQm ``$match``) and
grading the score as ``certain``, ``probable``, ``possible`` or ``certainly-not``.

- A shared identity document number (same system, same number) is certain.
- Otherwise the evidence adds up: the full name in any of its forms (names.py) 0.5, the
  birth date 0.3, administrative sex 0.1; a different birth date or sex counts against.
  Name, birth date and sex together are probable (0.9), never certain: common Chinese names
  collide, so such pairs go to a person to decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_exchange.identity.documents import InvalidIdentifier, document_for
from fhir_exchange.identity.names import family_keys, patient_name_keys

CERTAIN, PROBABLE, POSSIBLE = 0.95, 0.8, 0.5
WEIGHTS = {"name": 0.5, "family": 0.15, "birthDate": 0.3, "gender": 0.1}


def grade(score: float) -> str:
    if score >= CERTAIN:
        return "certain"
    if score >= PROBABLE:
        return "probable"
    if score >= POSSIBLE:
        return "possible"
    return "certainly-not"


def document_identifiers(patient: dict[str, Any]) -> set[tuple[str, str]]:
    """(system, canonical number) of the patient's identity documents."""
    found = set()
    for identifier in patient.get("identifier") or []:
        document = document_for(identifier.get("system"))
        value = identifier.get("value")
        if document is None or not isinstance(value, str):
            continue
        try:
            found.add((document.system, document.validate(value)))
        except InvalidIdentifier:
            continue
    return found


@dataclass(frozen=True, slots=True)
class Profile:
    """What matching compares of one Patient, computed once."""

    identifiers: frozenset[tuple[str, str]]
    names: frozenset[tuple[str, str]]
    families: frozenset[tuple[str, str]]
    birth_date: str | None
    gender: str | None

    @classmethod
    def of(cls, patient: dict[str, Any]) -> Profile:
        gender = patient.get("gender")
        return cls(frozenset(document_identifiers(patient)), frozenset(patient_name_keys(patient)),
                   frozenset(family_keys(patient)), patient.get("birthDate"),
                   gender if gender in ("male", "female") else None)


@dataclass(frozen=True, slots=True)
class Match:
    score: float
    grade: str
    reasons: tuple[str, ...]


def score(a: Profile, b: Profile) -> Match:
    shared = a.identifiers & b.identifiers
    if shared:
        return Match(1.0, "certain", tuple(f"same {system.rsplit('/', 1)[-1]}" for system, _ in sorted(shared)))
    total, reasons = 0.0, []
    if a.names & b.names:
        total += WEIGHTS["name"]
        reasons.append("name")
    elif a.families & b.families:
        total += WEIGHTS["family"]
        reasons.append("family name")
    if a.birth_date and b.birth_date:
        if a.birth_date == b.birth_date:
            total += WEIGHTS["birthDate"]
            reasons.append("birth date")
        else:
            total -= WEIGHTS["birthDate"]
            reasons.append("different birth date")
    if a.gender and b.gender:
        if a.gender == b.gender:
            total += WEIGHTS["gender"]
            reasons.append("sex")
        else:
            total -= 0.3
            reasons.append("different sex")
    total = max(0.0, min(total, 0.9))
    return Match(round(total, 3), grade(total), tuple(reasons))
