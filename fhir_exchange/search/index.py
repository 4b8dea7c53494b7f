"""Search index entries: the values extracted from a resource at write time.

Each entry type matches one index table (``fhir_exchange.store.models``). Extraction
(``fhir_exchange.search.extract``) turns a resource into a list of these; the
repository writes them as rows; the query builder (``fhir_exchange.search.query``)
searches the same columns. Normalisation helpers used on both sides live in
``fhir_exchange.search.values`` so writes and queries cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class StringEntry:
    param: str
    value: str  # normalised: accents stripped, case folded (values.normalize_string)
    exact: str  # the original text, for :exact


@dataclass(frozen=True, slots=True)
class TokenEntry:
    param: str
    system: str | None
    code: str | None
    text: str | None = None  # normalised Coding.display / CodeableConcept.text / Identifier.type.text, for :text
    type_system: str | None = None  # Identifier.type.coding.system, for :of-type
    type_code: str | None = None  # Identifier.type.coding.code, for :of-type


@dataclass(frozen=True, slots=True)
class DateEntry:
    param: str
    low: datetime  # naive UTC, inclusive: the earliest instant the value may denote
    high: datetime  # naive UTC, inclusive: the latest instant the value may denote


@dataclass(frozen=True, slots=True)
class ReferenceEntry:
    param: str
    target_type: str | None  # local reference: the type; None for an external/canonical URL
    target_id: str | None
    url: str | None = None  # absolute or canonical reference (canonical without its |version)


@dataclass(frozen=True, slots=True)
class QuantityEntry:
    param: str
    value: float
    system: str | None
    code: str | None
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class NumberEntry:
    param: str
    value: float


@dataclass(frozen=True, slots=True)
class UriEntry:
    param: str
    value: str


IndexEntry = StringEntry | TokenEntry | DateEntry | ReferenceEntry | QuantityEntry | NumberEntry | UriEntry
