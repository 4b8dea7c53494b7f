"""``ValueSet/$expand``: the codes of a value set, filtered by text, paged with
``offset``/``count``, displayed in the caller's language (R4 valueset-operation-expand).
Also expands a code system's implicit value set (``url=<code system>?fhir_vs``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fhir_exchange.errors import InvalidRequest
from fhir_exchange.operations.common import OperationCall
from fhir_exchange.operations.parameters import Spec
from terminology.fhir import DERIVED_EXTENSION

SPEC = Spec("expand", {
    "url": "uri", "valueSet": "Resource", "valueSetVersion": "string", "context": "uri", "contextDirection": "code",
    "filter": "string", "date": "dateTime", "offset": "integer", "count": "integer",
    "includeDesignations": "boolean", "designation": "string", "includeDefinition": "boolean",
    "activeOnly": "boolean", "excludeNested": "boolean", "excludeNotForUI": "boolean",
    "excludePostCoordinated": "boolean", "displayLanguage": "code", "limitedExpansion": "boolean",
})
# An expansion without count returns at most this many codes (and says so in total).
DEFAULT_COUNT = 1000
MAX_COUNT = 10_000


def run(call: OperationCall) -> dict[str, Any]:
    given = call.input
    count = given.get("count")
    if count is not None and count > MAX_COUNT:
        raise InvalidRequest(f"$expand count may be at most {MAX_COUNT}")
    inline = given.get("valueSet")
    compose = None
    if inline is not None:
        if not isinstance(inline, dict) or inline.get("resourceType") != "ValueSet" or not inline.get("compose"):
            raise InvalidRequest("$expand: valueSet must be a ValueSet resource with a compose")
        compose = inline["compose"]
    language = call.language
    expansion = call.terminology.expand(
        given.get("url") or (inline or {}).get("url"), given.get("valueSetVersion"), compose=compose,
        resource_id=call.resource_id, text_filter=given.get("filter"), offset=given.get("offset") or 0,
        count=DEFAULT_COUNT if count is None else count, language=language,
        include_designations=bool(given.get("includeDesignations")),
    )
    used_parameters: list[dict[str, Any]] = []
    for name, kind in (("filter", "String"), ("offset", "Integer"), ("count", "Integer"), ("displayLanguage", "Code")):
        data = language if name == "displayLanguage" else given.get(name)
        if data is not None:
            used_parameters.append({"name": name, f"value{kind}": data})
    used_parameters += [{"name": "used-codesystem", "valueUri": f"{url}|{version}"} for url, version in expansion.used_systems]
    contains = []
    for entry in expansion.entries:
        item: dict[str, Any] = {"system": entry.system, "code": entry.code}
        if entry.version:
            item["version"] = entry.version
        if entry.display:
            item["display"] = entry.display
        if entry.designations:
            item["designation"] = [
                {"language": d.language, "value": d.value,
                 **({"extension": [{"url": DERIVED_EXTENSION, "valueString": d.derived_by}]} if d.derived_by else {})}
                for d in entry.designations
            ]
        contains.append(item)
    value_set: dict[str, Any] = {"resourceType": "ValueSet"}
    if call.resource_id:
        value_set["id"] = call.resource_id
    if expansion.url:
        value_set["url"] = expansion.url
    if expansion.version:
        value_set["version"] = expansion.version
    if language:
        value_set["language"] = language
    value_set["status"] = "active"
    value_set["expansion"] = {
        "identifier": f"urn:uuid:{uuid.uuid4()}",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "total": expansion.total,
        "offset": expansion.offset,
        **({"parameter": used_parameters} if used_parameters else {}),
        **({"contains": contains} if contains else {}),
    }
    return value_set
