"""The CapabilityStatement, generated from what this server really supports: the resource
types it validates, the interactions its routes implement, and the search parameters its
index holds (composite and special parameters are not indexed, so not listed)."""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir_exchange.operations import OPERATIONS
from fhir_exchange.search.params import MODIFIERS
from fhir_exchange.search.registry import registry

SOFTWARE_VERSION = "0.1.0"
TYPE_INTERACTIONS = ("read", "vread", "update", "delete", "history-instance", "history-type", "create", "search-type")
RESULT_PARAMETERS = ("_count", "_sort", "_total", "_summary", "_elements", "_include", "_revinclude")


@cache
def _rest_resources() -> tuple[dict[str, Any], ...]:
    reg = registry()
    types = sorted(reg.resource_types())
    reverse: dict[str, list[str]] = {t: [] for t in types}
    params_by_type = {t: reg.params_for(t) for t in types}
    for source, params in params_by_type.items():
        for code, definition in params.items():
            if definition.type == "reference":
                for target in definition.target or ():
                    if target in reverse:
                        reverse[target].append(f"{source}:{code}")
    resources = []
    for resource_type in types:
        params = params_by_type[resource_type]
        search_params = [{"name": "_id", "type": "token"}, {"name": "_lastUpdated", "type": "date"}]
        for code in sorted(params):
            definition = params[code]
            if code in ("_id", "_lastUpdated") or definition.type in ("composite", "special"):
                continue
            entry: dict[str, Any] = {"name": code, "type": definition.type}
            modifiers = sorted(MODIFIERS.get(definition.type, ()))
            if modifiers:
                entry["documentation"] = "Modifiers: " + ", ".join(f":{m}" for m in modifiers)
            search_params.append(entry)
        includes = sorted(f"{resource_type}:{c}" for c, d in params.items() if d.type == "reference")
        resource: dict[str, Any] = {
            "type": resource_type,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
            "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "referencePolicy": ["literal", "logical", "local"],
            "searchInclude": ["*", *includes] if includes else ["*"],
            "searchRevInclude": sorted(reverse[resource_type]),
            "searchParam": search_params,
        }
        operations = [
            {"name": op.name, "definition": op.definition}
            for (on_type, _), op in sorted(OPERATIONS.items()) if on_type == resource_type
        ]
        if operations:
            resource["operation"] = operations
        resources.append(resource)
    return tuple(resources)


def token_endpoint(base_url: str) -> str:
    return base_url.rstrip("/").removesuffix("/fhir") + "/auth/token"


def capability_statement(base_url: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "id": "baylink",
        "url": f"{base_url}/metadata",
        "name": "BayLink",
        "title": "BayLink FHIR R4 server",
        "status": "active",
        "date": "2026-11-24",
        "publisher": "BayLink",
        "kind": "instance",
        "software": {"name": "BayLink", "version": SOFTWARE_VERSION},
        "implementation": {"description": "BayLink Greater Bay Area record exchange", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "extension": [{
                        "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                        "extension": [{"url": "token", "valueUri": token_endpoint(base_url)}],
                    }],
                    "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                             "code": "SMART-on-FHIR"}]}],
                    "description": "SMART Backend Services: client_credentials with a private_key_jwt assertion "
                                   "(RS384 or ES384) at the token endpoint; SMART v2 system scopes.",
                },
                "documentation": "Result parameters: " + ", ".join(RESULT_PARAMETERS)
                + "; chaining (one level or more), _has, Prefer: handling=lenient|strict.",
                "resource": list(_rest_resources()),
                "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
            }
        ],
    }
