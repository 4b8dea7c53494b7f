"""Rendering FHIR responses: ``application/fhir+json``, ETag / Location / Last-Modified,
``Prefer: return=…``, ``_pretty``; and refusing XML with 415."""

from __future__ import annotations

from email.utils import format_datetime
from typing import Any

import orjson
from fastapi import Request, Response

from fhir_exchange.errors import FhirError, InvalidRequest, Issue, UnsupportedMediaType, operation_outcome
from fhir_exchange.service import Outcome

FHIR_JSON = "application/fhir+json"
_JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir", "text/json")
_XML_HINTS = ("xml",)


def _is_xml(value: str) -> bool:
    return any(hint in value.lower() for hint in _XML_HINTS)


def negotiate(request: Request) -> None:
    """415 for XML in ``_format``, ``Accept`` (when it accepts no JSON) or ``Content-Type``."""
    fmt = request.query_params.get("_format")
    if fmt and (_is_xml(fmt) or fmt not in ("json", *_JSON_TYPES)):
        raise UnsupportedMediaType(f"_format '{fmt}' is not supported: this server speaks application/fhir+json only")
    accept = request.headers.get("accept", "")
    if accept and _is_xml(accept) and not any(t in accept for t in (*_JSON_TYPES, "*/*")):
        raise UnsupportedMediaType("XML is not supported: ask for application/fhir+json")
    content_type = request.headers.get("content-type", "")
    if request.method in ("POST", "PUT", "PATCH") and content_type:
        media = content_type.split(";")[0].strip().lower()
        if media not in _JSON_TYPES and media != "application/x-www-form-urlencoded":
            raise UnsupportedMediaType(
                f"Content-Type '{media}' is not supported: send application/fhir+json"
            )


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise InvalidRequest("the request body is empty; a FHIR resource in JSON was expected")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None


def dumps(body: Any, request: Request | None) -> bytes:
    pretty = request is not None and request.query_params.get("_pretty") == "true"
    return orjson.dumps(body, option=orjson.OPT_INDENT_2 if pretty else 0)


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None,
                  request: Request | None = None) -> Response:
    content = b"" if body is None else dumps(body, request)
    response = Response(content=content, status_code=status, media_type=FHIR_JSON if body is not None else None,
                        headers=headers)
    return response


def error_response(error: FhirError, request: Request | None = None) -> Response:
    return fhir_response(error.outcome(), error.status, error.headers, request)


def prefer_return(request: Request) -> str:
    for part in request.headers.get("prefer", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == "return" and value in ("minimal", "representation", "OperationOutcome"):
            return value
    return "representation"


def prefer_lenient(request: Request) -> bool:
    return "handling=lenient" in request.headers.get("prefer", "").replace(" ", "")


def render(outcome: Outcome, request: Request, base_url: str, *, honour_prefer: bool = False) -> Response:
    headers = dict(outcome.headers)
    stored = outcome.stored
    if stored is not None:
        headers["ETag"] = f'W/"{stored.version_id}"'
        headers["Last-Modified"] = format_datetime(stored.last_updated, usegmt=True)
        if outcome.status == 201 or (honour_prefer and request.method in ("POST", "PUT")):
            headers["Location"] = f"{base_url}/{stored.resource_type}/{stored.id}/_history/{stored.version_id}"
    body = outcome.body
    if honour_prefer and outcome.status != 204:
        choice = prefer_return(request)
        if choice == "minimal":
            body = None
        elif choice == "OperationOutcome":
            what = f"{stored.resource_type}/{stored.id} version {stored.version_id}" if stored else "done"
            body = operation_outcome([Issue("information", "informational", f"{request.method} {what}")])
    return fhir_response(body, outcome.status, headers, request)
