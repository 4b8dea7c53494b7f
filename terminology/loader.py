"""Reading terminology files: CSV tables (a code system, or a concept map) described by a
manifest entry or by command-line options, and FHIR JSON (CodeSystem, ConceptMap, ValueSet,
or a Bundle of them).

Every fault in a file is collected with its line number before anything is stored; a file
with any fault raises ``InvalidContent`` listing them all, so it is never half-loaded.

Code system CSV: ``code,display[,parent][,<language>…]`` where each language column (``en``,
``zh-Hant``, ``zh-Hans``, ``pt`` …) holds that language's designation and ``parent`` holds the
parent code(s), several separated by ``|``.
Concept map CSV: ``source_code,target_code,equivalence[,comment][,target_display]``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from terminology.content import EQUIVALENCES, NO_MATCH, CodeSystemContent, ConceptMapContent, ConceptRecord, MapRow
from terminology.errors import InvalidContent, Problem
from terminology.languages import canonical_language

CODE_SYSTEM_COLUMNS = ("code", "display")
MAP_COLUMNS = ("source_code", "target_code", "equivalence")
MAP_OPTIONAL = ("comment", "target_display")
# A language column is headed by a BCP 47 tag with a two-letter (ISO 639-1) primary language,
# or one of the three-letter Chinese languages; other names are refused, not taken as languages.
_LANGUAGE_TAG = re.compile(r"^([A-Za-z]{2}|yue|cmn|nan|hak)(-[A-Za-z0-9]{2,8})*$")
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@dataclass(slots=True)
class Source:
    """One thing to load: a CSV table with what the table itself cannot say, or a FHIR file."""

    path: Path
    kind: str  # "CodeSystem" | "ConceptMap" | "fhir"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.path.name


def read_manifest(path: Path) -> list[Source]:
    """A manifest is a JSON array of entries: ``file`` (relative to the manifest), ``kind``
    (CodeSystem, ConceptMap or fhir) and, for CSV tables, ``url``, ``version``, ``name``,
    ``title``, ``hierarchical``, ``content``, ``source``, ``retrieved``, ``note``, and for
    maps ``sourceSystem`` and ``targetSystem``."""
    try:
        entries = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InvalidContent(f"{path.name} is not valid JSON", [Problem(path.name, str(exc))]) from None
    if not isinstance(entries, list):
        raise InvalidContent(f"{path.name} must be a JSON array of entries")
    sources, problems = [], []
    for index, entry in enumerate(entries):
        where = f"entry {index + 1}"
        kind = entry.get("kind") if isinstance(entry, dict) else None
        if kind not in ("CodeSystem", "ConceptMap", "fhir"):
            problems.append(Problem(where, "kind must be CodeSystem, ConceptMap or fhir"))
            continue
        file = path.parent / str(entry.get("file", ""))
        if not entry.get("file") or not file.is_file():
            problems.append(Problem(where, f"file '{entry.get('file')}' not found beside the manifest"))
            continue
        if kind != "fhir":
            missing = [k for k in ("url",) + (("sourceSystem", "targetSystem") if kind == "ConceptMap" else ())
                       if not entry.get(k)]
            if missing:
                problems.append(Problem(where, f"missing {', '.join(missing)}"))
                continue
        sources.append(Source(file, kind, entry))
    if problems:
        raise InvalidContent(f"{path.name} is not a valid terminology manifest", problems)
    return sources


def identify(path: Path, meta: dict[str, Any]) -> list[Source]:
    """What a path on the command line is: a manifest, a FHIR JSON file, or a CSV table (whose
    kind is told by its header)."""
    if path.suffix.lower() == ".json":
        head = path.read_bytes()[:1].strip() or b"{"
        if head == b"[":
            return read_manifest(path)
        return [Source(path, "fhir", meta)]
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), [])
        kind = "ConceptMap" if "source_code" in header else "CodeSystem"
        return [Source(path, kind, meta)]
    raise InvalidContent(f"{path.name}: expected a .csv table, a FHIR .json file or a manifest .json")


def default_resource_id(source: Source) -> str:
    wanted = source.meta.get("id") or source.path.stem
    return wanted if _FHIR_ID.match(wanted) else re.sub(r"[^A-Za-z0-9\-.]", "-", wanted)[:64]


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line in the file where the record starts, fields) of each non-blank record; a quoted
    field may span lines."""
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    for row in reader:
        if row and any(cell.strip() for cell in row):
            yield start, row
        start = reader.line_num + 1


def _header(source: Source) -> tuple[Iterator[tuple[int, list[str]]], list[str]]:
    """The table's records after the header, and the header's column names."""
    rows = _rows(source.path)
    try:
        _, header = next(rows)
    except StopIteration:
        raise InvalidContent(f"{source.label} is empty", [Problem("line 1", "no header row")]) from None
    return rows, [h.strip() for h in header]


def read_code_system_csv(source: Source) -> CodeSystemContent:
    rows, header = _header(source)
    problems: list[Problem] = []
    missing = [c for c in CODE_SYSTEM_COLUMNS if c not in header]
    if missing:
        problems.append(Problem("line 1", f"missing column(s) {', '.join(missing)}; the header needs "
                                          "code,display and may add parent and language columns"))
    languages: dict[int, str] = {}
    for index, name in enumerate(header):
        if name in ("code", "display", "parent"):
            continue
        if _LANGUAGE_TAG.match(name):
            languages[index] = canonical_language(name)
        else:
            problems.append(Problem("line 1", f"column '{name}' is neither code, display, parent nor a language tag"))
    if len(set(header)) != len(header):
        problems.append(Problem("line 1", "a column name appears twice"))
    if problems:
        raise InvalidContent(f"{source.label} has a bad header", problems)
    at = {name: header.index(name) for name in ("code", "display", "parent") if name in header}
    concepts: dict[str, ConceptRecord] = {}
    first_line: dict[str, int] = {}
    parent_refs: list[tuple[int, str, str]] = []
    for number, row in rows:
        if len(row) != len(header):
            problems.append(Problem(f"line {number}", f"{len(row)} fields where the header has {len(header)}"))
            continue
        code = row[at["code"]].strip()
        if not code:
            problems.append(Problem(f"line {number}", "the code is empty"))
            continue
        if code in concepts:
            problems.append(Problem(f"line {number}", f"duplicate code '{code}' (first on line {first_line[code]})"))
            continue
        parents = tuple(p.strip() for p in row[at["parent"]].split("|") if p.strip()) if "parent" in at else ()
        record = ConceptRecord(code=code, display=row[at["display"]].strip() or None, parents=parents)
        for index, language in languages.items():
            value = row[index].strip()
            if value:
                record.designations[language] = value
        concepts[code] = record
        first_line[code] = number
        parent_refs.extend((number, code, p) for p in parents)
    for number, code, parent in parent_refs:
        if parent not in concepts:
            problems.append(Problem(f"line {number}", f"parent '{parent}' of '{code}' is not a code in this file"))
        elif parent == code:
            problems.append(Problem(f"line {number}", f"'{code}' names itself as its parent"))
    if not concepts and not problems:
        problems.append(Problem(source.label, "the table has no concepts"))
    if problems:
        raise InvalidContent(f"{source.label} was not loaded", problems)
    meta = source.meta
    content = CodeSystemContent(
        url=meta["url"],
        version=meta.get("version"),
        name=meta.get("name"),
        title=meta.get("title"),
        hierarchical=bool(meta.get("hierarchical", bool(parent_refs))),
        content=meta.get("content") or "complete",
        source=meta.get("source"),
        description=meta.get("note"),
        date=meta.get("retrieved"),
        resource_id=default_resource_id(source),
        concepts=list(concepts.values()),
    )
    return content  # the missing Chinese script is derived when it is stored (store.py), not for an unchanged load


def read_concept_map_csv(source: Source) -> ConceptMapContent:
    rows, header = _header(source)
    problems: list[Problem] = []
    missing = [c for c in MAP_COLUMNS if c not in header]
    unknown = [c for c in header if c not in MAP_COLUMNS + MAP_OPTIONAL]
    if missing:
        problems.append(Problem("line 1", f"missing column(s) {', '.join(missing)}; the header needs "
                                          "source_code,target_code,equivalence and may add comment,target_display"))
    if unknown:
        problems.append(Problem("line 1", f"unknown column(s) {', '.join(unknown)}"))
    if problems:
        raise InvalidContent(f"{source.label} has a bad header", problems)
    at = {name: header.index(name) for name in MAP_COLUMNS + MAP_OPTIONAL if name in header}
    meta = source.meta
    missing_systems = [k for k in ("sourceSystem", "targetSystem") if not meta.get(k)]
    if missing_systems:
        raise InvalidContent(f"{source.label} was not loaded", [Problem(
            source.label, "a map table needs its source and target code systems (--source-system and --target-system, "
                          "or sourceSystem and targetSystem in the manifest)")])
    source_system, target_system = meta["sourceSystem"], meta["targetSystem"]
    seen: dict[tuple[str, str], int] = {}
    result: list[MapRow] = []
    for number, row in rows:
        if len(row) != len(header):
            problems.append(Problem(f"line {number}", f"{len(row)} fields where the header has {len(header)}"))
            continue
        source_code = row[at["source_code"]].strip()
        target_code = row[at["target_code"]].strip()
        equivalence = row[at["equivalence"]].strip()
        if not source_code:
            problems.append(Problem(f"line {number}", "the source code is empty"))
            continue
        if equivalence not in EQUIVALENCES:
            problems.append(Problem(f"line {number}", f"equivalence '{equivalence}' is not one of {', '.join(EQUIVALENCES)}"))
            continue
        if not target_code and equivalence not in NO_MATCH:
            problems.append(Problem(f"line {number}", f"the target code is empty but the equivalence is '{equivalence}'"))
            continue
        key = (source_code, target_code)
        if key in seen:
            first = seen[key]
            problems.append(Problem(f"line {number}", f"duplicate map {source_code} -> {target_code} (first on line {first})"))
            continue
        seen[key] = number
        comment = row[at["comment"]].strip() if "comment" in at else ""
        display = row[at["target_display"]].strip() if "target_display" in at else ""
        result.append(MapRow(source_system, source_code, target_system, target_code or None, equivalence,
                             display or None, comment or None, number))
    if not result and not problems:
        problems.append(Problem(source.label, "the table has no rows"))
    if problems:
        raise InvalidContent(f"{source.label} was not loaded", problems)
    return ConceptMapContent(
        url=meta["url"],
        version=meta.get("version"),
        name=meta.get("name"),
        title=meta.get("title"),
        source_scope=meta.get("sourceScope") or source_system,
        target_scope=meta.get("targetScope") or target_system,
        source=meta.get("source"),
        description=meta.get("note"),
        date=meta.get("retrieved"),
        resource_id=default_resource_id(source),
        rows=result,
    )


def read_fhir_resources(source: Source) -> list[dict[str, Any]]:
    """The CodeSystem / ConceptMap / ValueSet resources in a FHIR JSON file (a resource or a
    Bundle of them)."""
    try:
        document = orjson.loads(source.path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InvalidContent(f"{source.label} is not valid JSON", [Problem(source.label, str(exc))]) from None
    if not isinstance(document, dict):
        raise InvalidContent(f"{source.label} must hold one FHIR resource or a Bundle")
    resources = [e.get("resource") for e in document.get("entry") or []] if document.get("resourceType") == "Bundle" \
        else [document]
    problems = [
        Problem(f"{source.label} #{index + 1}", f"{(r or {}).get('resourceType')} is not a CodeSystem, ConceptMap or ValueSet")
        for index, r in enumerate(resources)
        if not isinstance(r, dict) or r.get("resourceType") not in ("CodeSystem", "ConceptMap", "ValueSet")
    ]
    problems += [
        Problem(f"{source.label} #{index + 1}", f"{r['resourceType']} has no url")
        for index, r in enumerate(resources) if isinstance(r, dict) and not r.get("url")
    ]
    if problems:
        raise InvalidContent(f"{source.label} was not loaded", problems)
    return resources
