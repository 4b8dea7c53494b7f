"""``_summary`` and ``_elements`` (search.html#summary, search.html#elements): which top-level
elements of a resource are returned. The summary flags come from the R4B model metadata."""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir_exchange.validation import model_class

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
_ALWAYS = ("resourceType", "id", "meta")


@cache
def summary_elements(resource_type: str) -> frozenset[str]:
    """Top-level JSON keys that are in the summary (or mandatory) for ``resource_type``."""
    model = model_class(resource_type)
    if model is None:
        return frozenset(_ALWAYS)
    keys = set(_ALWAYS)
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("summary_element_property") or extra.get("element_required"):
            key = info.alias or name
            keys.add(key)
            keys.add(f"_{key}")
    return frozenset(keys)


def _subsetted(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    return {**resource, "meta": meta}


def shape_resource(resource: dict[str, Any], summary: str | None, elements: tuple[str, ...]) -> dict[str, Any]:
    if summary in (None, "false") and not elements:
        return resource
    resource_type = resource.get("resourceType", "")
    if summary == "true":
        keep = summary_elements(resource_type)
        return _subsetted({k: v for k, v in resource.items() if k in keep})
    if summary == "text":
        keep = set(_ALWAYS) | {"text"} | {k for k in summary_elements(resource_type) if k != "meta"}
        return _subsetted({k: v for k, v in resource.items() if k in keep})
    if summary == "data":
        return _subsetted({k: v for k, v in resource.items() if k != "text"})
    keep = set(_ALWAYS) | set(elements) | {f"_{e}" for e in elements}
    return _subsetted({k: v for k, v in resource.items() if k in keep})
