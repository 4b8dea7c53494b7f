"""The reader's mapping tables, loaded from the data files beside this module (their sources
are named in each file and in README.md): code system OIDs, identifier OIDs, section codes,
WS/T 500 document types and small value maps."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def _rows(name: str) -> list[dict[str, str]]:
    with (HERE / name).open(encoding="utf-8", newline="") as handle:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]


@cache
def code_systems() -> dict[str, str]:
    """Code system OID → FHIR system URI."""
    return {row["oid"]: row["uri"] for row in _rows("code-systems.csv")}


@cache
def identifier_systems() -> dict[str, str]:
    """Identifier root OID → FHIR identifier system."""
    return {row["oid"]: row["system"] for row in _rows("identifier-systems.csv")}


@cache
def local_identifier_systems() -> frozenset[str]:
    """Identifier systems whose OID names a kind of number that every institution assigns on
    its own (WS/T 500's 住院号, 门诊号, staff numbers…): the same value at two hospitals is
    two different things, so they are never matched on."""
    return frozenset(row["system"] for row in _rows("identifier-systems.csv") if row["scope"] == "local")


@dataclass(frozen=True, slots=True)
class SectionKind:
    kind: str
    title_en: str
    title_zh: str


@cache
def sections() -> dict[str, SectionKind]:
    """LOINC section code → what the section holds and its titles."""
    return {row["loinc"]: SectionKind(row["kind"], row["title_en"], row["title_zh"]) for row in _rows("sections.csv")}


@dataclass(frozen=True, slots=True)
class WsDocument:
    part: str
    code: str
    template: str
    title: str
    loinc: str | None
    loinc_display: str | None


@cache
def wst500_documents() -> tuple[WsDocument, ...]:
    return tuple(WsDocument(row["part"], row["code"], row["template"], row["title"], row["loinc"] or None,
                            row["loinc_display"] or None) for row in _rows("wst500-documents.csv"))


@cache
def value_maps() -> dict[str, Any]:
    return json.loads((HERE / "value-maps.json").read_text(encoding="utf-8"))


def value_map(name: str) -> dict[str, Any]:
    return value_maps()[name]


@cache
def ccda_documents() -> dict[str, str]:
    """C-CDA document templateId → its name (the most specific wins over the US Realm Header)."""
    return {row["template"]: row["name"] for row in _rows("ccda-documents.csv")}
