"""Which sensitive categories a resource falls in: its own ``meta.security`` labels, and the
categories its codes put it in by BayLink's value set of sensitive diagnoses (terminology
content ``valueset-sensitive-diagnoses.json``: one include per category, each carrying the
v3 ActCode sensitivity code). Mainland clinical-edition codes are read through their map
to WHO ICD-10. The index follows terminology changes (it is rebuilt when the terminology
generation moves, checked at most every few seconds)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from fhir_exchange.release_facts import codings_of, security_codes
from terminology import api as terminology_api
from terminology.errors import TerminologyError
from terminology.service import TerminologyService
from terminology.store import TerminologyStore

SENSITIVE_DIAGNOSES = "http://baylink.example.org/fhir/ValueSet/sensitive-diagnoses"
CATEGORY_EXTENSION = "http://baylink.example.org/fhir/StructureDefinition/sensitivity-category"
WHO_ICD10 = "http://hl7.org/fhir/sid/icd-10"
CHECK_EVERY = 5.0
_KNOWN_CODES = 100_000


class SensitivityLabeller:
    def __init__(self, sessions: Callable[[], Session]) -> None:
        self.sessions = sessions
        # the sensitive-diagnoses index, and what each code looked up so far means by it
        self._state: tuple[dict[tuple[str, str], frozenset[str]], dict[tuple[str, str], frozenset[str]]] = ({}, {})
        self._generation = -1
        self._checked = 0.0
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY:
            return
        with self.sessions() as session:
            store = TerminologyStore(session)
            generation = store.generation()
            if generation != self._generation:
                index = self._build(TerminologyService(store))
                with self._lock:
                    self._state, self._generation = (index, {}), generation
        self._checked = now

    @staticmethod
    def _build(service: TerminologyService) -> dict[tuple[str, str], frozenset[str]]:
        index: dict[tuple[str, str], set[str]] = {}
        try:
            _, _, compose = service.value_set_compose(SENSITIVE_DIAGNOSES)
        except TerminologyError:
            return {}
        for include in compose.get("include") or []:
            categories = {e["valueCoding"]["code"] for e in include.get("extension") or []
                          if e.get("url") == CATEGORY_EXTENSION and e.get("valueCoding")}
            if not categories:
                continue
            try:
                expansion = service.expand(None, compose={"include": [include]}, count=None)
            except TerminologyError:
                continue
            for entry in expansion.entries:
                index.setdefault((entry.system, entry.code), set()).update(categories)
        return {key: frozenset(value) for key, value in index.items()}

    def labels(self, resource: dict[str, Any], seen: dict[tuple[str, str], frozenset[str]] | None = None) -> frozenset[str]:
        """The resource's sensitivity labels. ``seen`` (the caller's, e.g. one request's)
        keeps the categories of each coding already looked up, so each is looked up once."""
        return self.labels_of(security_codes(resource), codings_of(resource), seen)

    def labels_of(self, security: frozenset[str], codings: tuple[tuple[str, str], ...],
                  seen: dict[tuple[str, str], frozenset[str]] | None = None) -> frozenset[str]:
        """The sensitivity labels of a resource with these ``meta.security`` codes and these
        codes in its CODED_FIELDS (as release facts keep them)."""
        found = set(security)
        refreshed = False
        for key in codings:
            categories = seen.get(key) if seen is not None else None
            if categories is None:
                if not refreshed:
                    self._refresh()
                    refreshed = True
                categories = self._categories(*key)
                if seen is not None:
                    seen[key] = categories
            found |= categories
        return frozenset(found)

    def _categories(self, system: str, code: str) -> frozenset[str]:
        # kept per terminology generation: what a code means for sensitivity changes only
        # when the terminology does (and then the index is rebuilt, and this with it)
        index, known = self._state
        found = known.get((system, code))
        if found is not None:
            return found
        found = index.get((system, code), frozenset())
        if system != WHO_ICD10:
            for translation in _translations(system, code):
                found |= index.get((WHO_ICD10, translation), frozenset())
        if len(known) < _KNOWN_CODES:
            known[(system, code)] = found
        return found


def _translations(system: str, code: str) -> list[str]:
    terminology = terminology_api.configured()
    if terminology is None:
        return []
    return [t.code for t in terminology.translate(system, code, WHO_ICD10) if t.code]
