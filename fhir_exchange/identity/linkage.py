"""Record linkage across the boundary: finding a Patient's other records, linking the sure
ones (``Patient.link``, both ways), queueing the doubtful ones as review Tasks for a person
to decide, and cross-referencing identifiers (IHE PIXm). Nothing is ever merged."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from fhir_exchange.identity.matching import POSSIBLE, Match, Profile, score
from fhir_exchange.service import FhirService
from fhir_exchange.store.repository import StoredResource

REVIEW_CODE = {"system": "http://baylink.example.org/fhir/CodeSystem/task-code", "code": "patient-match-review",
               "display": "Review a possible match between two patient records"}
MAX_CANDIDATES = 500


@dataclass(frozen=True, slots=True)
class Candidate:
    stored: StoredResource
    match: Match


class Linkage:
    def __init__(self, service: FhirService) -> None:
        self.service = service
        self.repo = service.repo

    def _candidate_pks(self, patient: dict[str, Any], profile: Profile) -> list[int]:
        """Blocking: Patients sharing an identity document, or born the same day."""
        pks: list[int] = []
        parser = self.service.parser
        for system, value in sorted(profile.identifiers):
            pks += self.repo.search_pks_internal(parser.parse("Patient", [("identifier", f"{system}|{value}")]))
        if profile.birth_date:
            pks += self.repo.search_pks_internal(parser.parse("Patient", [("birthdate", profile.birth_date)]))
        return list(dict.fromkeys(pks))[:MAX_CANDIDATES]

    def candidates(self, patient: dict[str, Any], *, internal: bool) -> list[Candidate]:
        """Scored candidates, best first; ``internal`` (linkage) sees every record, otherwise
        (``$match``) only what the release gate lets the caller see."""
        profile = Profile.of(patient)
        pks = self._candidate_pks(patient, profile)
        loaded = self.repo.load_internal(pks) if internal else self.repo.load(pks)
        found = []
        for stored in loaded:
            if stored.id == patient.get("id") or stored.content is None:
                continue
            match = score(profile, Profile.of(stored.content))
            if match.score > 0:
                found.append(Candidate(stored, match))
        return sorted(found, key=lambda c: (-c.match.score, c.stored.id))

    def link(self, patient: StoredResource) -> None:
        """After a Patient is written: link its certain matches, queue its doubtful ones."""
        if patient.content is None:
            return
        for candidate in self.candidates(patient.content, internal=True):
            if candidate.match.grade == "certain":
                self._link_both(patient.id, candidate.stored.id)
            elif candidate.match.score >= POSSIBLE:
                self._queue_review(patient.id, candidate)

    def _link_both(self, a: str, b: str) -> None:
        for this, other in ((a, b), (b, a)):
            current = self.repo.load_internal(self.repo.search_pks_internal(
                self.service.parser.parse("Patient", [("_id", this)])))
            if not current or current[0].content is None:
                continue
            content = dict(current[0].content)
            links = list(content.get("link") or [])
            if any((link.get("other") or {}).get("reference") == f"Patient/{other}" for link in links):
                continue
            links.append({"other": {"reference": f"Patient/{other}"}, "type": "seealso"})
            content["link"] = links
            self.repo.write_internal("Patient", this, {k: v for k, v in content.items() if k != "meta"})

    def _queue_review(self, patient_id: str, candidate: Candidate) -> None:
        pair = sorted((patient_id, candidate.stored.id))
        task_id = "match-" + hashlib.sha256("|".join(pair).encode()).hexdigest()[:40]
        if self.repo.current_version("Task", task_id) is not None:
            return
        self.repo.write_internal("Task", task_id, {
            "resourceType": "Task",
            "status": "requested",
            "intent": "proposal",
            "priority": "routine",
            "code": {"coding": [REVIEW_CODE]},
            "description": f"Patient/{pair[0]} and Patient/{pair[1]} may be the same person: "
                           f"{candidate.match.grade} ({candidate.match.score}; {', '.join(candidate.match.reasons)}). "
                           "Link them (Patient.link) or mark them distinct; nothing is merged automatically.",
            "focus": {"reference": f"Patient/{patient_id}"},
            "for": {"reference": f"Patient/{patient_id}"},
            "input": [
                {"type": {"text": "candidate"}, "valueReference": {"reference": f"Patient/{candidate.stored.id}"}},
                {"type": {"text": "score"}, "valueDecimal": candidate.match.score},
                {"type": {"text": "grade"}, "valueString": candidate.match.grade},
            ],
        })

    def cross_references(self, system: str, value: str) -> list[StoredResource]:
        """The Patients holding this identifier and every Patient linked to them (PIXm)."""
        query = self.service.parser.parse("Patient", [("identifier", f"{system}|{value}")])
        found = {s.id: s for s in self.repo.load(self.repo.search_pks(query))}
        frontier = list(found)
        while frontier:
            current = frontier.pop()
            refs = {(link.get("other") or {}).get("reference", "") for link in (found[current].content or {}).get("link") or []}
            linked = self.repo.load(self.repo.search_pks(self.service.parser.parse("Patient", [("link", f"Patient/{current}")])))
            ids = {r.removeprefix("Patient/") for r in refs if r.startswith("Patient/")} | {s.id for s in linked}
            new = [i for i in ids if i not in found]
            if new:
                query = self.service.parser.parse("Patient", [("_id", ",".join(new))])
                for stored in self.repo.load(self.repo.search_pks(query)):
                    found[stored.id] = stored
                    frontier.append(stored.id)
        return list(found.values())
