"""The in-memory form of terminology content, whatever it was read from (CSV tables or FHIR
JSON): code systems with concepts, concept maps with rows, value sets with their compose.

``complete_designations`` gives every concept the Chinese script it lacks, derived with
OpenCC and marked as derived. ``content_hash`` fingerprints what the source said (derived
designations excluded), so a re-load of unchanged content is recognised and skipped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from terminology.languages import DERIVED_HK2S, DERIVED_S2HK, EN, ZH_HANS, ZH_HANT, to_simplified, to_traditional_hk

# R4 ConceptMapEquivalence (http://hl7.org/fhir/concept-map-equivalence).
EQUIVALENCES = (
    "relatedto", "equivalent", "equal", "wider", "subsumes", "narrower", "specializes", "inexact", "unmatched",
    "disjoint",
)
NO_MATCH = ("unmatched", "disjoint")


@dataclass(slots=True)
class ConceptRecord:
    code: str
    display: str | None = None
    parents: tuple[str, ...] = ()
    # language -> value, as the source gave them
    designations: dict[str, str] = field(default_factory=dict)
    # language -> (value, how it was derived)
    derived: dict[str, tuple[str, str]] = field(default_factory=dict)

    def complete_designations(self) -> None:
        hant, hans = self.designations.get(ZH_HANT), self.designations.get(ZH_HANS)
        if hant and not hans:
            self.derived[ZH_HANS] = (to_simplified(hant), DERIVED_HK2S)
        elif hans and not hant:
            self.derived[ZH_HANT] = (to_traditional_hk(hans), DERIVED_S2HK)

    def all_designations(self) -> dict[str, tuple[str, str | None]]:
        """language -> (value, derived_by or None)."""
        result: dict[str, tuple[str, str | None]] = {lang: (value, None) for lang, value in self.designations.items()}
        for lang, (value, how) in self.derived.items():
            result.setdefault(lang, (value, how))
        return result

    def fingerprint(self) -> list[Any]:
        return [self.code, self.display or "", sorted(self.parents), sorted(self.designations.items())]


@dataclass(slots=True)
class CodeSystemContent:
    url: str
    version: str | None
    name: str | None = None
    title: str | None = None
    hierarchical: bool = False
    content: str = "complete"
    source: str | None = None
    description: str | None = None
    date: str | None = None
    resource_id: str | None = None
    concepts: list[ConceptRecord] = field(default_factory=list)

    def content_hash(self) -> str:
        digest = hashlib.sha256()
        digest.update(orjson.dumps([self.url, self.name, self.title, self.hierarchical, self.content]))
        for concept in self.concepts:
            digest.update(orjson.dumps(concept.fingerprint()))
        return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class MapRow:
    source_system: str
    source_code: str
    target_system: str | None
    target_code: str | None
    equivalence: str
    target_display: str | None = None
    comment: str | None = None
    line: int = 0  # where it came from, for error messages


@dataclass(slots=True)
class ConceptMapContent:
    url: str
    version: str | None
    name: str | None = None
    title: str | None = None
    source_scope: str | None = None
    target_scope: str | None = None
    source: str | None = None
    description: str | None = None
    date: str | None = None
    resource_id: str | None = None
    rows: list[MapRow] = field(default_factory=list)

    def content_hash(self) -> str:
        rows = sorted(
            (r.source_system, r.source_code, r.target_system or "", r.target_code or "", r.equivalence,
             r.target_display or "", r.comment or "")
            for r in self.rows
        )
        return hashlib.sha256(orjson.dumps([self.url, self.name, self.source_scope, self.target_scope, rows])).hexdigest()


@dataclass(slots=True)
class ValueSetContent:
    url: str
    version: str | None
    name: str | None = None
    resource_id: str | None = None
    compose: dict[str, Any] = field(default_factory=dict)

    def content_hash(self) -> str:
        return hashlib.sha256(orjson.dumps([self.url, self.name, self.compose], option=orjson.OPT_SORT_KEYS)).hexdigest()


def english_display(concept: ConceptRecord) -> str | None:
    return concept.designations.get(EN) or concept.display
