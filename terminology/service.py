"""Terminology services over one session: lookup, validate-code, expand, translate and
subsumes, as the FHIR operations of the same names define them (R4 terminology-service).
Results are plain values; the FHIR edge (``fhir_exchange.operations``) turns them into
Parameters and ValueSet resources.

Displays honour a language: the designation in that language (``en``, ``zh-Hant``,
``zh-Hans``, …) when the concept has one, else the code system's own display.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from terminology.content import NO_MATCH, CodeSystemContent, ConceptMapContent, ValueSetContent
from terminology.errors import InvalidContent, NotFound, Unsupported
from terminology.fhir import code_system_from_resource, concept_map_from_resource, value_set_from_resource
from terminology.models import CodeSystemVersion
from terminology.store import ConceptRow, SaveResult, Selection, TerminologyStore, filter_needles, search_text

MAX_VALUE_SET_DEPTH = 8
# Read backwards (target to source), a map's equivalence turns round: a target wider than its
# source is a source narrower than its target (R4 ConceptMapEquivalence).
REVERSED = {"wider": "narrower", "narrower": "wider", "subsumes": "specializes", "specializes": "subsumes"}


@dataclass(frozen=True, slots=True)
class DesignationValue:
    language: str
    value: str
    derived_by: str | None = None


@dataclass(slots=True)
class LookupResult:
    name: str
    system: str
    version: str
    code: str
    display: str | None
    designations: list[DesignationValue]
    parents: list[str]
    children: list[str]


@dataclass(slots=True)
class ValidationResult:
    result: bool
    message: str | None = None
    display: str | None = None
    system: str | None = None
    code: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class ExpansionEntry:
    system: str
    version: str | None
    code: str
    display: str | None
    designations: tuple[DesignationValue, ...] = ()


@dataclass(slots=True)
class Expansion:
    url: str | None
    version: str | None
    total: int | None
    offset: int
    entries: list[ExpansionEntry]
    used_systems: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Translation:
    equivalence: str
    system: str | None
    code: str | None
    display: str | None
    map_url: str
    comment: str | None = None


@dataclass(slots=True)
class TranslationResult:
    result: bool
    matches: list[Translation]
    message: str | None = None


def choose_display(display: str | None, designations: Sequence[DesignationValue], language: str | None) -> str | None:
    if language:
        for designation in designations:
            if designation.language == language:
                return designation.value
    return display


def _same_text(a: str, b: str) -> bool:
    def norm(s: str) -> str:
        return " ".join(unicodedata.normalize("NFKC", s).casefold().split())

    return norm(a) == norm(b)


@dataclass(slots=True)
class _Resolved:
    includes: list[Selection] = field(default_factory=list)
    excludes: list[Selection] = field(default_factory=list)
    # included concepts of systems not held here, listed in the value set itself
    literals: list[tuple[str, str | None, str, str | None]] = field(default_factory=list)
    display_overrides: dict[tuple[int, str], str] = field(default_factory=dict)
    used: dict[int, CodeSystemVersion] = field(default_factory=dict)


class TerminologyService:
    def __init__(self, store: TerminologyStore) -> None:
        self.store = store

    # --- writes from FHIR resources ------------------------------------------------------------

    def ingest(self, resource: dict[str, Any], *, origin: str | None = None, strict: bool = False) -> SaveResult | None:
        """Bring a stored CodeSystem / ConceptMap / ValueSet resource into the terminology
        tables. A CodeSystem whose content is ``not-present`` or a ``supplement`` carries no
        concepts to store and is left alone. ``strict`` (the loader) also refuses a map whose
        systems or codes are not held here."""
        kind = resource.get("resourceType")
        if not resource.get("url"):
            return None
        if resource.get("id") and kind in ("CodeSystem", "ConceptMap", "ValueSet"):
            self.store.forget_other_urls(kind, resource["id"], resource["url"])
        if kind == "CodeSystem":
            if resource.get("content") in ("not-present", "supplement"):
                return None
            return self.save_code_system(code_system_from_resource(resource), origin)
        if kind == "ConceptMap":
            return self.save_concept_map(concept_map_from_resource(resource), origin, strict=strict)
        if kind == "ValueSet":
            return self.store.save_value_set(value_set_from_resource(resource), origin)
        return None

    def save_code_system(self, content: CodeSystemContent, origin: str | None = None) -> SaveResult:
        return self.store.save_code_system(content, origin)

    def save_concept_map(self, content: ConceptMapContent, origin: str | None = None, *, strict: bool = False) -> SaveResult:
        if strict:
            problems = self.store.check_map(content)
            if problems:
                raise InvalidContent(f"ConceptMap {content.url} was not loaded", problems)
        return self.store.save_concept_map(content, origin)

    def save_value_set(self, content: ValueSetContent, origin: str | None = None) -> SaveResult:
        return self.store.save_value_set(content, origin)

    # --- code systems --------------------------------------------------------------------------

    def code_system(self, system: str | None, version: str | None = None, *, resource_id: str | None = None) -> CodeSystemVersion:
        if resource_id:
            stored = self.store.code_system_for_resource(resource_id)
            if stored is None:
                raise NotFound(f"CodeSystem/{resource_id} holds no concepts on this server")
            if system and system != stored.url:
                raise InvalidContent(f"system {system} is not the url of CodeSystem/{resource_id} ({stored.url})")
            return stored
        if not system:
            raise InvalidContent("the code system is not named: give system (or url), or a coding")
        stored = self.store.code_system(system, version)
        if stored is None:
            known = self.store.versions(system)
            if known and version:
                raise NotFound(f"code system {system} has no version {version} here (known: {', '.join(known)})")
            raise NotFound(f"code system {system} is not known to this server")
        return stored

    def _designations(self, pk: int) -> list[DesignationValue]:
        return [DesignationValue(*d) for d in self.store.designations([pk])[pk]]

    def lookup(self, system: str | None, code: str, version: str | None = None, language: str | None = None,
               *, resource_id: str | None = None) -> LookupResult:
        stored = self.code_system(system, version, resource_id=resource_id)
        concept = self.store.concept(stored.pk, code)
        if concept is None:
            raise NotFound(f"code '{code}' is not in {stored.url} (version {stored.version})")
        designations = self._designations(concept.pk)
        return LookupResult(
            name=stored.name or stored.title or stored.url,
            system=stored.url,
            version=stored.version,
            code=code,
            display=choose_display(concept.display, designations, language),
            designations=designations,
            parents=self.store.parents(stored.pk, code),
            children=self.store.children(stored.pk, code),
        )

    def _check_display(self, concept: ConceptRow, display: str | None, language: str | None,
                       where: str) -> ValidationResult:
        designations = self._designations(concept.pk)
        shown = choose_display(concept.display, designations, language)
        if display:
            names = [n for n in (concept.display, *(d.value for d in designations)) if n]
            if not any(_same_text(display, n) for n in names):
                return ValidationResult(False, f"'{display}' is not a display of {concept.code} in {where}; "
                                               f"the display is '{shown}'", shown, code=concept.code)
        return ValidationResult(True, None, shown, code=concept.code)

    def validate_code_in_system(self, system: str | None, code: str, version: str | None = None,
                                display: str | None = None, language: str | None = None,
                                *, resource_id: str | None = None) -> ValidationResult:
        try:
            stored = self.code_system(system, version, resource_id=resource_id)
        except NotFound as exc:
            return ValidationResult(False, exc.message, system=system, code=code)
        concept = self.store.concept(stored.pk, code)
        if concept is None:
            note = " (this server holds only a fragment of it)" if stored.content == "fragment" else ""
            return ValidationResult(False, f"code '{code}' is not in {stored.url} version {stored.version}{note}",
                                    system=stored.url, code=code, version=stored.version)
        result = self._check_display(concept, display, language, stored.url)
        result.system, result.version = stored.url, stored.version
        return result

    def subsumes(self, system: str | None, code_a: str, code_b: str, version: str | None = None,
                 *, resource_id: str | None = None) -> str:
        stored = self.code_system(system, version, resource_id=resource_id)
        for code in (code_a, code_b):
            if self.store.concept(stored.pk, code) is None:
                raise NotFound(f"code '{code}' is not in {stored.url} (version {stored.version})")
        if code_a == code_b:
            return "equivalent"
        if code_a in self.store.ancestors(stored.pk, code_b):
            return "subsumes"
        if code_b in self.store.ancestors(stored.pk, code_a):
            return "subsumed-by"
        return "not-subsumed"

    # --- value sets ----------------------------------------------------------------------------

    def value_set_compose(self, url: str | None, version: str | None = None, *, resource_id: str | None = None,
                          ) -> tuple[str, str | None, dict[str, Any]]:
        """(url, version, compose) of a stored value set, or of a code system's implicit
        value set (``<code system url>?fhir_vs``: all its concepts)."""
        if resource_id:
            stored = self.store.value_set_for_resource(resource_id)
            if stored is None:
                raise NotFound(f"ValueSet/{resource_id} is not known to this server")
            return stored.url, stored.version or None, stored.compose
        if not url:
            raise InvalidContent("the value set is not named: give url (or call the operation on a ValueSet)")
        if url.endswith("?fhir_vs"):
            system = url.removesuffix("?fhir_vs")
            cs = self.code_system(system, version)
            return url, cs.version, {"include": [{"system": system, "version": cs.version}]}
        stored = self.store.value_set(url, version)
        if stored is None:
            raise NotFound(f"value set {url}{' version ' + version if version else ''} is not known to this server")
        return stored.url, stored.version or None, stored.compose

    def _resolve(self, compose: dict[str, Any], depth: int = 0, resolved: _Resolved | None = None) -> _Resolved:
        if depth > MAX_VALUE_SET_DEPTH:
            raise Unsupported("value sets nest too deeply (or include each other in a loop)")
        resolved = resolved or _Resolved()
        for part, target in (("include", resolved.includes), ("exclude", resolved.excludes)):
            for index, item in enumerate(compose.get(part) or []):
                where = f"ValueSet.compose.{part}[{index}]"
                for url in item.get("valueSet") or []:
                    if item.get("system"):
                        raise Unsupported(f"{where}: a system together with valueSet is not supported")
                    if part == "exclude":
                        raise Unsupported(f"{where}: excluding a whole value set is not supported")
                    _, _, nested = self.value_set_compose(url.split("|")[0], url.split("|")[1] if "|" in url else None)
                    self._resolve(nested, depth + 1, resolved)
                system = item.get("system")
                if not system:
                    continue
                stored = self.store.code_system(system, item.get("version"))
                concepts = item.get("concept") or []
                if stored is None:
                    if concepts and part == "include" and not item.get("filter"):
                        resolved.literals += [(system, item.get("version"), c["code"], c.get("display")) for c in concepts]
                        continue
                    if part == "exclude":
                        resolved.literals = [lit for lit in resolved.literals
                                             if not (lit[0] == system and lit[2] in {c["code"] for c in concepts})]
                        continue
                    raise NotFound(f"{where}: code system {system}"
                                   f"{' version ' + item['version'] if item.get('version') else ''} is not known to this server")
                resolved.used[stored.pk] = stored
                target.append(self._selection(stored, concepts, item.get("filter") or [], where))
                for concept in concepts:
                    if concept.get("display") and part == "include":
                        resolved.display_overrides[(stored.pk, concept["code"])] = concept["display"]
        return resolved

    def _selection(self, stored: CodeSystemVersion, concepts: list[dict[str, Any]], filters: list[dict[str, Any]],
                   where: str) -> Selection:
        codes: tuple[str, ...] | None = tuple(c["code"] for c in concepts) if concepts else None
        is_a, descendent_of, is_not_a = [], [], []
        for index, flt in enumerate(filters):
            prop, op, value = flt.get("property"), flt.get("op"), flt.get("value", "")
            if prop not in ("concept", "code"):
                raise Unsupported(f"{where}.filter[{index}]: filters on property '{prop}' are not supported "
                                  "(supported: concept with is-a, descendent-of, is-not-a, =, in)")
            if op == "is-a":
                is_a.append(value)
            elif op == "descendent-of":
                descendent_of.append(value)
            elif op == "is-not-a":
                is_not_a.append(value)
            elif op == "=":
                codes = (value,) if codes is None else tuple(c for c in codes if c == value)
            elif op == "in":
                wanted = tuple(v.strip() for v in value.split(","))
                codes = wanted if codes is None else tuple(c for c in codes if c in wanted)
            else:
                raise Unsupported(f"{where}.filter[{index}]: filter operator '{op}' is not supported "
                                  "(supported: is-a, descendent-of, is-not-a, =, in)")
        return Selection(stored.pk, codes, tuple(is_a), tuple(descendent_of), tuple(is_not_a))

    def expand(self, url: str | None, version: str | None = None, *, compose: dict[str, Any] | None = None,
               resource_id: str | None = None, text_filter: str | None = None, offset: int = 0,
               count: int | None = None, language: str | None = None, include_designations: bool = False,
               ) -> Expansion:
        if compose is None:
            url, version, compose = self.value_set_compose(url, version, resource_id=resource_id)
        resolved = self._resolve(compose)
        total_sql, rows = self.store.expand(resolved.includes, resolved.excludes, text_filter, offset, count)
        literals = [lit for lit in resolved.literals
                    if all(n in search_text([lit[2], lit[3]]) for n in filter_needles(text_filter or ""))]
        assert total_sql is not None
        literal_start = max(0, offset - total_sql)
        room = None if count is None else max(0, count - len(rows))
        literal_page = literals[literal_start : None if room is None else literal_start + room]
        designations = self.store.designations([r.pk for r in rows]) if rows else {}
        entries = []
        for row in rows:
            stored = resolved.used[row.system_pk]
            values = tuple(DesignationValue(*d) for d in designations[row.pk])
            display = resolved.display_overrides.get((row.system_pk, row.code)) if not language else None
            entries.append(ExpansionEntry(
                stored.url, stored.version, row.code, display or choose_display(row.display, values, language),
                values if include_designations else (),
            ))
        entries += [ExpansionEntry(system, ver, code, display) for system, ver, code, display in literal_page]
        used = [(s.url, s.version) for s in resolved.used.values()]
        return Expansion(url, version, total_sql + len(literals), offset, entries, used)

    def validate_code_in_value_set(self, url: str | None, system: str | None, code: str, *, version: str | None = None,
                                   system_version: str | None = None, display: str | None = None,
                                   language: str | None = None, resource_id: str | None = None) -> ValidationResult:
        vs_url, _, compose = self.value_set_compose(url, version, resource_id=resource_id)
        resolved = self._resolve(compose)
        if not system:
            return ValidationResult(False, "the code has no system, so it cannot be checked against a value set", code=code)
        for lit_system, _, lit_code, lit_display in resolved.literals:
            if lit_system == system and lit_code == code:
                if display and lit_display and not _same_text(display, lit_display):
                    return ValidationResult(False, f"'{display}' is not the display of {code}; it is '{lit_display}'",
                                            lit_display, system, code)
                return ValidationResult(True, None, lit_display, system, code)
        stored = self.store.code_system(system, system_version)
        if stored is None:
            return ValidationResult(False, f"code system {system} is not known to this server", system=system, code=code)
        concept = self.store.concept(stored.pk, code)
        if concept is None:
            return ValidationResult(False, f"code '{code}' is not in {system} version {stored.version}", system=system, code=code)
        if not self.store.contains(resolved.includes, resolved.excludes, stored.pk, code):
            return ValidationResult(False, f"{system}#{code} is not in the value set {vs_url}", system=system, code=code,
                                    display=concept.display)
        result = self._check_display(concept, display, language, system)
        result.system, result.version = system, stored.version
        return result

    # --- maps ------------------------------------------------------------------------------------

    def translate(self, system: str, code: str, *, target_system: str | None = None, map_url: str | None = None,
                  map_version: str | None = None, map_resource_id: str | None = None, target_value_set: str | None = None,
                  reverse: bool = False, language: str | None = None) -> TranslationResult:
        if (map_url or map_resource_id) and self.store.concept_map(map_url, map_resource_id) is None:
            raise NotFound(f"concept map {map_url or 'ConceptMap/' + str(map_resource_id)} is not known to this server")
        targets: set[str] | None = None
        if target_value_set:
            _, _, compose = self.value_set_compose(target_value_set)
            targets = {inc["system"] for inc in compose.get("include") or [] if inc.get("system")}
        rows = self.store.map_rows(system, code, target_system=target_system, map_url=map_url, map_version=map_version,
                                   map_resource_id=map_resource_id, reverse=reverse)
        matches = []
        display_cache: dict[tuple[str, str], str | None] = {}
        for element, url in rows:
            out_system, out_code = (element.source_system, element.source_code) if reverse \
                else (element.target_system, element.target_code)
            if targets is not None and out_system not in targets:
                continue
            display = None if reverse else element.target_display
            if out_system and out_code and (language or not display):
                key = (out_system, out_code)
                if key not in display_cache:
                    display_cache[key] = self.display(out_system, out_code, language)
                display = display_cache[key] or display
            equivalence = REVERSED.get(element.equivalence, element.equivalence) if reverse else element.equivalence
            matches.append(Translation(equivalence, out_system, out_code, display, url, element.comment))
        result = any(m.equivalence not in NO_MATCH for m in matches)
        message = None
        if not matches:
            message = f"no map here translates {system}#{code}" + (f" to {target_system}" if target_system else "")
        elif not result:
            message = f"{system}#{code} is mapped as {', '.join(sorted({m.equivalence for m in matches}))}"
        return TranslationResult(result, matches, message)

    def display(self, system: str, code: str, language: str | None = None) -> str | None:
        stored = self.store.code_system(system)
        if stored is None:
            return None
        concept = self.store.concept(stored.pk, code)
        if concept is None:
            return None
        if not language:
            return concept.display
        return choose_display(concept.display, self._designations(concept.pk), language)

