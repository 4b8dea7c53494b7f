"""Validation of incoming resources with the fhir.resources (R4B) models.

An invalid resource is refused with one OperationOutcome issue per problem, each naming
the element path (``Observation.code.coding[0].system``).
"""

from __future__ import annotations

import re
import typing
from functools import cache
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from fhir_exchange.errors import InvalidRequest, Issue
from fhir_exchange.identity.documents import InvalidIdentifier, document_for

# fhir.resources derives enum_values from each element's short description; for these the
# derived list is not the binding (CapabilityStatement.format is bound to all MIME types).
UNRELIABLE_ENUMS = frozenset({("CapabilityStatement", "format")})
ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # datatypes.html#id
MAX_ISSUES = 50


@cache
def model_class(resource_type: str) -> Any | None:
    try:
        return get_fhir_model_class(resource_type)
    except (ValueError, KeyError, AttributeError):
        return None


@cache
def _element_table(model: Any) -> dict[str, tuple[frozenset[str] | None, Any]]:
    """For each JSON key of ``model``: the complete set of allowed codes (None if the binding
    is not enumerated, or fhir.resources lists it only in part, ending in '+') and the model
    class of its complex value (None for primitives and for nested resources)."""
    table: dict[str, tuple[frozenset[str] | None, Any]] = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        codes = extra.get("enum_values")
        reliable = (model.__name__, info.alias or name) not in UNRELIABLE_ENUMS
        allowed = frozenset(codes) if codes and "+" not in codes and reliable else None
        table[info.alias or name] = (allowed, _child_model(info.annotation))
    return table


def _child_model(annotation: Any) -> Any | None:
    while True:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if not args:
            break
        annotation = args[0]
    name = getattr(annotation, "__name__", "")
    if not name.endswith("Type") or name in ("ResourceType", "FHIRPrimitiveExtensionType"):
        return None
    return model_class(name.removesuffix("Type"))


def _code_issues(model: Any, value: Any, path: str, issues: list[Issue]) -> None:
    """Codes outside a required binding's value set (which pydantic does not check)."""
    if not isinstance(value, dict) or len(issues) >= MAX_ISSUES:
        return
    table = _element_table(model)
    for key, item in value.items():
        allowed, child = table.get(key, (None, None))
        items = item if isinstance(item, list) else [item]
        for index, element in enumerate(items):
            where = f"{path}.{key}" + (f"[{index}]" if isinstance(item, list) else "")
            if allowed is not None and isinstance(element, str) and element not in allowed:
                issues.append(Issue("error", "code-invalid",
                                    f"{where}: '{element}' is not one of {', '.join(sorted(allowed))}", (where,)))
            elif child is not None and isinstance(element, dict):
                _code_issues(child, element, where, issues)


def _serialised_without_nul(value: dict[str, Any]) -> bool:
    try:
        return b"\\u0000" not in orjson.dumps(value)
    except TypeError:  # a value JSON does not serialise as it is (e.g. a Decimal): look element by element
        return False


def _nul_path(value: Any, path: str) -> str | None:
    """Where in ``value`` a string holds U+0000, if anywhere (looked for only if the
    serialised resource holds one)."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        if path.count(".") == 0 and _serialised_without_nul(value):
            return None
        for key, item in value.items():
            if "\x00" in key:
                return f"{path}.{key}"
            found = _nul_path(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def check_id(resource_id: str) -> None:
    if not ID_PATTERN.match(resource_id):
        raise InvalidRequest(
            f"'{resource_id}' is not a valid resource id (1-64 characters of A-Z, a-z, 0-9, '-' and '.')"
        )


def _path(resource_type: str, loc: tuple[Any, ...]) -> str:
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif (isinstance(part, str) and part.startswith("function-after")) or part in ("__root__",):
            continue
        else:
            path += f".{part}"
    return path


def validate_resource(body: Any, expected_type: str | None = None) -> dict[str, Any]:
    """Check ``body`` is a valid resource (of ``expected_type`` if given) and return it, with
    the identity document numbers of a person in their canonical system and form."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object holding a FHIR resource")
    resource_type = body.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise InvalidRequest("the resource has no resourceType", expression=["resourceType"])
    if expected_type is not None and resource_type != expected_type:
        raise InvalidRequest(
            f"the resource is a {resource_type}, but the request is for {expected_type}", expression=["resourceType"]
        )
    model = model_class(resource_type)
    if model is None:
        raise InvalidRequest(f"'{resource_type}' is not a FHIR R4 resource type", expression=["resourceType"])
    resource_id = body.get("id")
    if resource_id is not None and (not isinstance(resource_id, str) or not ID_PATTERN.match(resource_id)):
        raise InvalidRequest(f"'{resource_id}' is not a valid resource id", expression=[f"{resource_type}.id"])
    try:
        model.model_validate(body)
    except ValidationError as exc:
        issues = []
        for error in exc.errors()[:MAX_ISSUES]:
            path = _path(resource_type, tuple(error.get("loc", ())))
            message = "unknown element" if error.get("type") == "extra_forbidden" else error.get("msg", "invalid")
            issues.append(Issue("error", "invalid", f"{path}: {message}", (path,)))
        raise InvalidRequest(issues[0].diagnostics, issues=issues) from None
    except (ValueError, TypeError) as exc:  # raised by model validators outside pydantic's wrapping
        raise InvalidRequest(f"{resource_type}: {exc}") from None
    nul = _nul_path(body, resource_type)
    if nul is not None:
        raise InvalidRequest(f"{nul}: contains the character U+0000 (NUL), which BayLink does not store (FHIR strings "
                             f"should hold no control characters but tab, CR and LF: R4 datatypes.html#string)",
                             expression=[nul])
    issues: list[Issue] = []
    _code_issues(model, body, resource_type, issues)
    if issues:
        raise InvalidRequest(issues[0].diagnostics, issues=issues)
    if resource_type in PERSON_TYPES and body.get("identifier"):
        return canonical_identifiers(body)
    return body


# Resources whose identifiers name a person: their identity document numbers are checked.
PERSON_TYPES = frozenset({"Patient", "RelatedPerson", "Practitioner", "Person"})
# What is sealed at rest (fhir_exchange/crypto.py): identity numbers of persons, and the content
# of Binary resources (originals of converted messages and documents, attachments).
SEALED_TYPES = PERSON_TYPES | {"Binary"}


def canonical_identifiers(resource: dict[str, Any]) -> dict[str, Any]:
    """Each identifier of a known identity document in its preferred system and canonical
    form (``a1234563`` → ``A123456(3)``); a number that fails its document's check is refused
    naming the identifier and why."""
    issues: list[Issue] = []
    identifiers = []
    for index, identifier in enumerate(resource["identifier"]):
        document = document_for(identifier.get("system"))
        value = identifier.get("value")
        if document is None or not isinstance(value, str):
            identifiers.append(identifier)
            continue
        path = f"{resource['resourceType']}.identifier[{index}].value"
        try:
            identifiers.append({**identifier, "system": document.system, "value": document.validate(value)})
        except InvalidIdentifier as exc:
            issues.append(Issue("error", "invalid", f"{path}: '{value}' is not a valid {document.name} number: {exc}", (path,)))
    if issues:
        raise InvalidRequest(issues[0].diagnostics, issues=issues)
    return {**resource, "identifier": identifiers}
