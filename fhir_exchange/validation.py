"""Validation of incoming resources with the fhir.resources (R4B) models.

An invalid resource is refused with one OperationOutcome issue per problem, each naming
the element path (``Observation.code.coding[0].system``).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from fhir_exchange.errors import InvalidRequest, Issue

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # datatypes.html#id
MAX_ISSUES = 50


@cache
def model_class(resource_type: str) -> Any | None:
    try:
        return get_fhir_model_class(resource_type)
    except (ValueError, KeyError, AttributeError):
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
        elif isinstance(part, str) and part.startswith("function-after") or part in ("__root__",):
            continue
        else:
            path += f".{part}"
    return path


def validate_resource(body: Any, expected_type: str | None = None) -> dict[str, Any]:
    """Check ``body`` is a valid resource (of ``expected_type`` if given) and return it unchanged."""
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
    return body
