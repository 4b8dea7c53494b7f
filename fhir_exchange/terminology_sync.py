"""Keeps the terminology tables in step with the CodeSystem, ConceptMap and ValueSet
resources in the store: every write or delete of one of them is applied to the terminology
tables in the same transaction, so the resource and what ``$lookup`` / ``$expand`` /
``$translate`` answer from it cannot disagree. The process's terminology cache is dropped
when that transaction commits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from fhir_exchange.errors import from_terminology
from terminology import api as terminology_api
from terminology.errors import TerminologyError
from terminology.fhir import code_system_resource, concept_map_from_resource, concept_map_resource
from terminology.loader import Source, read_code_system_csv, read_concept_map_csv, read_fhir_resources
from terminology.service import TerminologyService
from terminology.store import SaveResult, TerminologyStore

if TYPE_CHECKING:
    from fhir_exchange.service import FhirService

TERMINOLOGY_TYPES = frozenset({"CodeSystem", "ConceptMap", "ValueSet"})


def _invalidate(_: Session) -> None:
    terminology = terminology_api.configured()
    if terminology is not None:
        terminology.invalidate()


def _invalidate_after_commit(session: Session) -> None:
    if not event.contains(session, "after_commit", _invalidate):
        event.listen(session, "after_commit", _invalidate, once=True)


def written(session: Session, document: dict[str, Any]) -> None:
    service = TerminologyService(TerminologyStore(session))
    try:
        result = service.ingest(document, origin=f"{document['resourceType']}/{document['id']}")
    except TerminologyError as exc:
        raise from_terminology(exc) from None
    if result is not None and result.status != "unchanged":
        _invalidate_after_commit(session)


def deleted(session: Session, resource_type: str, resource_id: str) -> None:
    TerminologyStore(session).delete_resource(resource_type, resource_id)
    _invalidate_after_commit(session)


def _item_count(resource: dict[str, Any]) -> int:
    """Concepts (nested ones too) of a CodeSystem, map targets of a ConceptMap: for the report."""
    def concepts(items: list[dict[str, Any]]) -> int:
        return sum(1 + concepts(c.get("concept") or []) for c in items)

    if resource["resourceType"] == "CodeSystem":
        return concepts(resource.get("concept") or [])
    if resource["resourceType"] == "ConceptMap":
        return sum(len(e.get("target") or []) for g in resource.get("group") or [] for e in g.get("element") or [])
    return 0


def load_source(service: FhirService, source: Source) -> list[SaveResult]:
    """Load one terminology file in the caller's transaction: into the terminology tables
    (strictly: a map's systems and codes must be held here) and, as the matching resource,
    into the FHIR store. A file whose content is already loaded changes nothing."""
    session = service.repo.session
    terminology = TerminologyService(TerminologyStore(session))
    origin = str(source.path)
    if source.kind == "fhir":
        results = []
        for resource in read_fhir_resources(source):
            if resource["resourceType"] == "ConceptMap":
                terminology.save_concept_map(concept_map_from_resource(resource), origin, strict=True)
            result = service.put_if_changed(resource)
            items = _item_count(resource)
            results.append(SaveResult(resource["resourceType"], resource["url"], resource.get("version") or "",
                                      "unchanged" if result is None else "loaded", items))
        if any(r.status != "unchanged" for r in results):
            _invalidate_after_commit(session)
        return results
    if source.kind == "CodeSystem":
        content = read_code_system_csv(source)
        saved = terminology.save_code_system(content, origin)
        current = service.repo.current_version("CodeSystem", content.resource_id or "")
        if saved.status == "unchanged" and current is not None and not current[1]:
            return [saved]  # the tables and the stored resource already hold exactly this
        for concept in content.concepts:
            if not concept.derived:
                concept.complete_designations()
        content.version = saved.version
        resource = code_system_resource(content)
    else:
        map_content = read_concept_map_csv(source)
        saved = terminology.save_concept_map(map_content, origin, strict=True)
        map_content.version = saved.version
        resource = concept_map_resource(map_content)
    service.put_if_changed(resource)
    if saved.status != "unchanged":
        _invalidate_after_commit(session)
    return [saved]

