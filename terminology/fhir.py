"""FHIR JSON to content and back: CodeSystem, ConceptMap and ValueSet (R4).

Reading accepts hierarchy as nesting or as the ``parent`` property; designations keep their
language. Derived designations are written with the extension below and are recognised
(and not counted as source content) when read back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from terminology.content import (
    EQUIVALENCES,
    CodeSystemContent,
    ConceptMapContent,
    ConceptRecord,
    MapRow,
    ValueSetContent,
)
from terminology.errors import InvalidContent, Problem
from terminology.languages import canonical_language

DERIVED_EXTENSION = "http://baylink.example.org/fhir/StructureDefinition/designation-derived-by"
PARENT_PROPERTY = {"code": "parent", "uri": "http://hl7.org/fhir/concept-properties#parent", "type": "code",
                   "description": "The concept this concept is a kind of (is-a)."}
# Above this many concepts the stored CodeSystem resource carries metadata only
# (content "not-present"); its concepts are served by $lookup, $expand and $validate-code.
INLINE_CONCEPT_LIMIT = 5000


def _walk(concepts: list[dict[str, Any]], parent: str | None) -> Iterator[tuple[dict[str, Any], str | None]]:
    for concept in concepts:
        yield concept, parent
        yield from _walk(concept.get("concept") or [], concept.get("code"))


def code_system_from_resource(resource: dict[str, Any]) -> CodeSystemContent:
    records: dict[str, ConceptRecord] = {}
    problems: list[Problem] = []
    for index, (concept, parent) in enumerate(_walk(resource.get("concept") or [], None)):
        code = concept.get("code")
        if not code:
            problems.append(Problem(f"CodeSystem.concept[{index}]", "a concept has no code"))
            continue
        parents = [parent] if parent else []
        for prop in concept.get("property") or []:
            if prop.get("code") == "parent" and prop.get("valueCode"):
                parents.append(prop["valueCode"])
        record = records.get(code)
        if record is not None:
            if parent is None or parent in record.parents:
                problems.append(Problem(f"CodeSystem.concept[{index}]", f"code '{code}' appears more than once"))
            else:  # the same concept nested under a second parent (polyhierarchy)
                record.parents = (*record.parents, parent)
            continue
        record = ConceptRecord(code=code, display=concept.get("display"), parents=tuple(dict.fromkeys(parents)))
        for designation in concept.get("designation") or []:
            language, value = designation.get("language"), designation.get("value")
            if not language or not value:
                continue
            derived_by = next((e.get("valueString") for e in designation.get("extension") or []
                               if e.get("url") == DERIVED_EXTENSION), None)
            lang = canonical_language(language)
            if derived_by:
                record.derived[lang] = (value, derived_by)
            else:
                record.designations.setdefault(lang, value)
        records[code] = record
    if problems:
        raise InvalidContent(f"CodeSystem {resource.get('url')} is not acceptable", problems)
    content = CodeSystemContent(
        url=resource.get("url") or "",
        version=resource.get("version"),
        name=resource.get("name"),
        title=resource.get("title"),
        hierarchical=resource.get("hierarchyMeaning") is not None or any(r.parents for r in records.values()),
        content=resource.get("content") or "complete",
        description=resource.get("description"),
        source=resource.get("copyright"),
        date=resource.get("date"),
        resource_id=resource.get("id"),
        concepts=list(records.values()),
    )
    for record in content.concepts:
        record.complete_designations()
    return content


def code_system_resource(content: CodeSystemContent) -> dict[str, Any]:
    """The CodeSystem resource for the FHIR store: all concepts inline up to
    ``INLINE_CONCEPT_LIMIT``, metadata only beyond."""
    resource: dict[str, Any] = {
        "resourceType": "CodeSystem",
        "url": content.url,
        "version": content.version,
        "name": content.name,
        "title": content.title,
        "status": "active",
        "date": content.date,
        "description": content.description,
        "copyright": content.source,
        "caseSensitive": True,
        "hierarchyMeaning": "is-a" if content.hierarchical else None,
        "content": content.content,
        "count": len(content.concepts),
    }
    if content.resource_id:
        resource["id"] = content.resource_id
    if len(content.concepts) > INLINE_CONCEPT_LIMIT:
        resource["content"] = "not-present"
    else:
        if any(c.parents for c in content.concepts):
            resource["property"] = [PARENT_PROPERTY]
        resource["concept"] = [_concept_element(c) for c in content.concepts]
    return {k: v for k, v in resource.items() if v is not None}


def _concept_element(concept: ConceptRecord) -> dict[str, Any]:
    element: dict[str, Any] = {"code": concept.code}
    if concept.display:
        element["display"] = concept.display
    designations = []
    for language, (value, derived_by) in concept.all_designations().items():
        designation: dict[str, Any] = {"language": language, "value": value}
        if derived_by:
            designation["extension"] = [{"url": DERIVED_EXTENSION, "valueString": derived_by}]
        designations.append(designation)
    if designations:
        element["designation"] = designations
    if concept.parents:
        element["property"] = [{"code": "parent", "valueCode": p} for p in concept.parents]
    return element


def concept_map_from_resource(resource: dict[str, Any]) -> ConceptMapContent:
    rows: list[MapRow] = []
    problems: list[Problem] = []
    for g, group in enumerate(resource.get("group") or []):
        source_system, target_system = group.get("source"), group.get("target")
        if not source_system:
            problems.append(Problem(f"ConceptMap.group[{g}].source", "a group must name its source system"))
            continue
        for e, element in enumerate(group.get("element") or []):
            code = element.get("code")
            if not code:
                problems.append(Problem(f"ConceptMap.group[{g}].element[{e}]", "an element has no code"))
                continue
            for t, target in enumerate(element.get("target") or []):
                equivalence = target.get("equivalence") or "equivalent"
                if equivalence not in EQUIVALENCES:
                    where = f"ConceptMap.group[{g}].element[{e}].target[{t}].equivalence"
                    problems.append(Problem(where, f"'{equivalence}' is not a ConceptMapEquivalence code"))
                    continue
                rows.append(MapRow(source_system, code, target_system, target.get("code"), equivalence,
                                   target.get("display"), target.get("comment")))
    if problems:
        raise InvalidContent(f"ConceptMap {resource.get('url')} is not acceptable", problems)
    return ConceptMapContent(
        url=resource.get("url") or "",
        version=resource.get("version"),
        name=resource.get("name"),
        title=resource.get("title"),
        source_scope=resource.get("sourceUri") or resource.get("sourceCanonical"),
        target_scope=resource.get("targetUri") or resource.get("targetCanonical"),
        description=resource.get("description"),
        source=resource.get("copyright"),
        date=resource.get("date"),
        resource_id=resource.get("id"),
        rows=rows,
    )


def concept_map_resource(content: ConceptMapContent) -> dict[str, Any]:
    groups: dict[tuple[str, str | None], dict[str, dict[str, Any]]] = {}
    for row in content.rows:
        elements = groups.setdefault((row.source_system, row.target_system), {})
        element = elements.setdefault(row.source_code, {"code": row.source_code, "target": []})
        target: dict[str, Any] = {"equivalence": row.equivalence}
        if row.target_code:
            target["code"] = row.target_code
        if row.target_display:
            target["display"] = row.target_display
        if row.comment:
            target["comment"] = row.comment
        element["target"].append(target)
    resource: dict[str, Any] = {
        "resourceType": "ConceptMap",
        "id": content.resource_id,
        "url": content.url,
        "version": content.version,
        "name": content.name,
        "title": content.title,
        "status": "active",
        "date": content.date,
        "description": content.description,
        "copyright": content.source,
        "sourceUri": content.source_scope,
        "targetUri": content.target_scope,
        "group": [
            {"source": source, **({"target": target} if target else {}), "element": list(elements.values())}
            for (source, target), elements in groups.items()
        ],
    }
    return {k: v for k, v in resource.items() if v is not None}


def value_set_from_resource(resource: dict[str, Any]) -> ValueSetContent:
    return ValueSetContent(
        url=resource.get("url") or "",
        version=resource.get("version"),
        name=resource.get("name"),
        resource_id=resource.get("id"),
        compose=resource.get("compose") or {},
    )
