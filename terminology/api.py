"""The Python API other packages call for every coded element they handle:
``translate``, ``display`` and ``normalise_unit``.

Answers are cached in the process. The cache is dropped when terminology changes: at once
for changes made through this process's ``Terminology``, and within ``check_interval``
seconds (default 1 s) for changes made elsewhere, which are seen through the load log's
generation number.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from terminology.errors import TerminologyError
from terminology.languages import canonical_language
from terminology.service import TerminologyService, Translation
from terminology.store import TerminologyStore

UCUM = "http://unitsofmeasure.org"
# The code system of unit spellings seen in hospital feeds, and its map to UCUM
# (terminology/content/unit-spellings*.csv).
UNIT_SPELLING = "http://baylink.example.org/fhir/CodeSystem/unit-spelling"


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit as FHIR Quantity carries it: the UCUM code, and a human-readable unit."""

    code: str
    system: str
    display: str | None


class Terminology:
    def __init__(self, sessions: Callable[[], Session], *, check_interval: float = 1.0, max_entries: int = 500_000) -> None:
        self._sessions = sessions
        self._check_interval = check_interval
        self._max_entries = max_entries
        self._cache: dict[tuple[Any, ...], Any] = {}
        self._generation = -1
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def _fresh(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < self._check_interval:
            return
        with self._sessions() as session:
            generation = TerminologyStore(session).generation()
        with self._lock:
            if generation != self._generation:
                self._cache.clear()
                self._generation = generation
            self._checked_at = now

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()
            self._checked_at = 0.0

    def _cached(self, key: tuple[Any, ...], compute: Callable[[TerminologyService], Any]) -> Any:
        self._fresh()
        try:
            return self._cache[key]
        except KeyError:
            pass
        with self._sessions() as session:
            value = compute(TerminologyService(TerminologyStore(session)))
        if len(self._cache) >= self._max_entries:
            self._cache.clear()
        self._cache[key] = value
        return value

    def translate(self, system: str, code: str, target_system: str | None = None,
                  language: str | None = None) -> tuple[Translation, ...]:
        """Every target this code maps to (all of them when a map is ambiguous), each with its
        equivalence; unmatched and disjoint rows are left out. Empty when nothing maps it."""
        wanted = canonical_language(language) if language else None

        def compute(service: TerminologyService) -> tuple[Translation, ...]:
            result = service.translate(system, code, target_system=target_system, language=wanted)
            return tuple(m for m in result.matches if m.code and m.equivalence not in ("unmatched", "disjoint"))

        return self._cached(("translate", system, code, target_system, language), compute)

    def display(self, system: str, code: str, language: str | None = None) -> str | None:
        """The display of a code in a language (``en``, ``zh-Hant``, ``zh-Hans``, or a tag such
        as ``zh-HK`` that maps to one), falling back to the code system's own display; None for
        an unknown system or code."""
        language = canonical_language(language) if language else None
        return self._cached(("display", system, code, language),
                            lambda service: service.display(system, code, language))

    def in_value_set(self, value_set: str, system: str, code: str) -> bool:
        """Whether system#code is in the (current version of the) value set; False for an
        unknown value set."""
        def compute(service: TerminologyService) -> bool:
            try:
                return service.validate_code_in_value_set(value_set, system, code).result
            except TerminologyError:
                return False

        return self._cached(("in", value_set, system, code), compute)

    def normalise_unit(self, spelling: str) -> Unit | None:
        """A unit as a hospital feed spelled it (``mmol/l``, ``x10E9/L``, ``毫摩尔/升``) as UCUM;
        None when it is not recognised."""
        def compute(service: TerminologyService) -> Unit | None:
            text = spelling.strip()
            if not text:
                return None
            if service.display(UCUM, text) is not None:
                return Unit(text, UCUM, text)
            for candidate in dict.fromkeys((text, " ".join(text.split()), text.replace(" ", ""))):
                for match in service.translate(UNIT_SPELLING, candidate, target_system=UCUM).matches:
                    if match.code and match.equivalence in ("equivalent", "equal"):
                        return Unit(match.code, UCUM, match.code)
            return None

        return self._cached(("unit", spelling), compute)


_default: Terminology | None = None


def configure(sessions: Callable[[], Session], **options: Any) -> Terminology:
    """Set the process's terminology (the composition root calls this with its sessions)."""
    global _default
    _default = Terminology(sessions, **options)
    return _default


def configured() -> Terminology | None:
    return _default


def default() -> Terminology:
    if _default is None:
        raise RuntimeError("terminology is not configured: call terminology.configure(sessionmaker) first")
    return _default


def translate(system: str, code: str, target_system: str | None = None, language: str | None = None) -> tuple[Translation, ...]:
    return default().translate(system, code, target_system, language)


def display(system: str, code: str, language: str | None = None) -> str | None:
    return default().display(system, code, language)


def normalise_unit(spelling: str) -> Unit | None:
    return default().normalise_unit(spelling)
