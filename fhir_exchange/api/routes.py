"""FHIR REST routes. Thin: each one opens the unit of work, calls one service method and
renders the outcome. No SQL and no release decisions here (the repository makes those)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi import APIRouter, Depends, Request, Response

from fhir_exchange.api.capability import capability_statement, token_endpoint
from fhir_exchange.api.rendering import fhir_response, json_body, negotiate, prefer_lenient, prefer_return, render
from fhir_exchange.api.runtime import UnitOfWork, UnitOfWorkDep, base_url_of
from fhir_exchange.auth.scopes import ADMIN_SCOPE
from fhir_exchange.auth.service import ASSERTION_ALGORITHMS
from fhir_exchange.bundles import BundleProcessor
from fhir_exchange.errors import InvalidRequest, NotFound, from_terminology
from fhir_exchange.operations import OPERATIONS
from fhir_exchange.operations.common import OperationCall
from fhir_exchange.operations.parameters import OperationInput
from terminology.errors import TerminologyError

router = APIRouter(dependencies=[Depends(negotiate)])
JsonBody = Annotated[Any, Depends(json_body)]
_CONTROL = {"_format", "_pretty"}


def _query_items(request: Request) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.query_params.multi_items() if k not in _CONTROL]


def _if_match(request: Request) -> int | None:
    value = request.headers.get("if-match")
    if not value:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise InvalidRequest(f"If-Match '{value}' is not a version ETag such as W/\"3\"")
    return int(text)


async def _search_form(request: Request) -> list[tuple[str, str]]:
    content_type = request.headers.get("content-type", "")
    items = _query_items(request)
    if content_type.startswith("application/x-www-form-urlencoded"):
        body = (await request.body()).decode()
        items += parse_qsl(body, keep_blank_values=True)
    return items


# --- system level ------------------------------------------------------------------------------


@router.get("/metadata")
def metadata(request: Request) -> Response:
    """Open to anyone, as SMART requires: it says how to authenticate."""
    base_url = base_url_of(request, request.app.state.fhir)
    return fhir_response(capability_statement(base_url), request=request)


@router.get("/.well-known/smart-configuration")
def smart_configuration(request: Request) -> Response:
    """SMART configuration for Backend Services (hl7.org/fhir/smart-app-launch/conformance.html)."""
    base_url = base_url_of(request, request.app.state.fhir)
    body = {
        "issuer": base_url,
        "token_endpoint": token_endpoint(base_url),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": ["system/*.cruds", "system/*.rs", "system/*.read", "system/*.write", ADMIN_SCOPE],
        "capabilities": ["client-confidential-asymmetric", "permission-v2"],
    }
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("")
@router.get("/")
def system_get(request: Request, uow: UnitOfWorkDep) -> Response:
    snapshot = request.query_params.get("_getpages")
    if not snapshot:
        raise InvalidRequest("system-level search is not supported; search a resource type, e.g. GET /fhir/Patient")
    offset = int(request.query_params.get("_offset", "0") or 0)
    count = request.query_params.get("_count")
    with uow.transaction("search-system", str(request.url.query)) as service:
        outcome = service.page(snapshot, offset, int(count) if count and count.isdigit() else None)
    return render(outcome, request, uow.base_url)


@router.post("")
@router.post("/")
def transaction(request: Request, uow: UnitOfWorkDep, body: JsonBody) -> Response:
    with uow.transaction("transaction") as service:
        assert uow.session is not None
        result = BundleProcessor(service, uow.session, prefer_return(request)).process(body)
    return fhir_response(result, 200, request=request)


@router.get("/_history")
def system_history(request: Request, uow: UnitOfWorkDep) -> Response:
    with uow.transaction("history-system") as service:
        outcome = service.history(None, None, _query_items(request))
    return render(outcome, request, uow.base_url)


# --- operations (before the instance routes, which would take "$op" for an id) ------------------


async def _operation_body(request: Request) -> Any:
    return await json_body(request) if request.method == "POST" else None


OperationBody = Annotated[Any, Depends(_operation_body)]


def _operation(request: Request, uow: UnitOfWork, body: Any, resource_type: str, name: str,
               resource_id: str | None) -> Response:
    operation = OPERATIONS.get((resource_type, name))
    if operation is None:
        supported = ", ".join(sorted(f"{t}/${n}" for t, n in OPERATIONS))
        raise NotFound(f"operation ${name} is not supported on {resource_type} (supported: {supported})")
    query = _query_items(request)
    if request.method == "POST":
        given = OperationInput.from_parameters(operation.spec, body, query)
    else:
        given = OperationInput.from_query(operation.spec, query)
    with uow.transaction("operation", f"${name} {request.url.query}") as service:
        if resource_id is not None:
            service.repo.read(resource_type, resource_id)  # 404 / 410 for an unknown instance
        assert uow.session is not None
        call = OperationCall(given, resource_id, request.headers.get("accept-language"), uow.session, uow.base_url,
                             service)
        try:
            body = operation.run(call)
        except TerminologyError as exc:
            raise from_terminology(exc) from None
    return fhir_response(body, request=request)


@router.api_route("/{resource_type}/${name}", methods=["GET", "POST"])
def type_operation(resource_type: str, name: str, request: Request, uow: UnitOfWorkDep,
                   body: OperationBody) -> Response:
    return _operation(request, uow, body, resource_type, name, None)


@router.api_route("/{resource_type}/{resource_id}/${name}", methods=["GET", "POST"])
def instance_operation(resource_type: str, resource_id: str, name: str, request: Request,
                       uow: UnitOfWorkDep, body: OperationBody) -> Response:
    return _operation(request, uow, body, resource_type, name, resource_id)


# --- type level ----------------------------------------------------------------------------------


@router.get("/{resource_type}")
def search(resource_type: str, request: Request, uow: UnitOfWorkDep) -> Response:
    with uow.transaction("search-type", f"{resource_type}?{request.url.query}") as service:
        outcome = service.search(resource_type, _query_items(request), lenient=prefer_lenient(request))
    return render(outcome, request, uow.base_url)


@router.post("/{resource_type}/_search")
def search_post(
    resource_type: str, request: Request, uow: UnitOfWorkDep,
    items: Annotated[list[tuple[str, str]], Depends(_search_form)],
) -> Response:
    with uow.transaction("search-type", f"{resource_type}?{urlencode(items)}") as service:
        outcome = service.search(resource_type, items, lenient=prefer_lenient(request))
    return render(outcome, request, uow.base_url)


@router.get("/{resource_type}/_history")
def type_history(resource_type: str, request: Request, uow: UnitOfWorkDep) -> Response:
    with uow.transaction("history-type") as service:
        outcome = service.history(resource_type, None, _query_items(request))
    return render(outcome, request, uow.base_url)


@router.post("/{resource_type}")
def create(resource_type: str, request: Request, uow: UnitOfWorkDep, body: JsonBody) -> Response:
    # Conditional create: the If-None-Exist header, or criteria in the query as fhirpy sends them.
    criteria = request.headers.get("if-none-exist")
    query = [(k, v) for k, v in _query_items(request)]
    if not criteria and query:
        from urllib.parse import urlencode

        criteria = urlencode(query)
    with uow.transaction("create") as service:
        outcome = service.create(resource_type, body, if_none_exist=criteria)
    return render(outcome, request, uow.base_url, honour_prefer=True)


@router.put("/{resource_type}")
def conditional_update(resource_type: str, request: Request, uow: UnitOfWorkDep, body: JsonBody) -> Response:
    items = _query_items(request)
    with uow.transaction("update", f"{resource_type}?{request.url.query}") as service:
        outcome = service.conditional_update(resource_type, items, body, if_match=_if_match(request))
    return render(outcome, request, uow.base_url, honour_prefer=True)


@router.delete("/{resource_type}")
def conditional_delete(resource_type: str, request: Request, uow: UnitOfWorkDep) -> Response:
    with uow.transaction("delete", f"{resource_type}?{request.url.query}") as service:
        outcome = service.conditional_delete(resource_type, _query_items(request))
    return render(outcome, request, uow.base_url)


# --- instance level ------------------------------------------------------------------------------


@router.get("/{resource_type}/{resource_id}")
def read(resource_type: str, resource_id: str, request: Request, uow: UnitOfWorkDep) -> Response:
    with uow.transaction("read") as service:
        outcome = service.read(resource_type, resource_id)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and outcome.stored is not None:
        wanted = {tag.strip().removeprefix("W/").strip('"') for tag in if_none_match.split(",")}
        etag = f'W/"{outcome.stored.version_id}"'
        if str(outcome.stored.version_id) in wanted or "*" in wanted:
            return Response(status_code=304, headers={"ETag": etag})
    return render(outcome, request, uow.base_url)


@router.put("/{resource_type}/{resource_id}")
def update(resource_type: str, resource_id: str, request: Request, uow: UnitOfWorkDep, body: JsonBody) -> Response:
    with uow.transaction("update") as service:
        outcome = service.update(resource_type, resource_id, body, if_match=_if_match(request))
    return render(outcome, request, uow.base_url, honour_prefer=True)


@router.delete("/{resource_type}/{resource_id}")
def delete(resource_type: str, resource_id: str, request: Request, uow: UnitOfWorkDep) -> Response:
    with uow.transaction("delete") as service:
        outcome = service.delete(resource_type, resource_id, if_match=_if_match(request))
    return render(outcome, request, uow.base_url)


@router.get("/{resource_type}/{resource_id}/_history")
def instance_history(resource_type: str, resource_id: str, request: Request, uow: UnitOfWorkDep) -> Response:
    with uow.transaction("history-instance") as service:
        outcome = service.history(resource_type, resource_id, _query_items(request))
    return render(outcome, request, uow.base_url)


@router.get("/{resource_type}/{resource_id}/_history/{version_id}")
def vread(resource_type: str, resource_id: str, version_id: str, request: Request, uow: UnitOfWorkDep) -> Response:
    with uow.transaction("vread") as service:
        outcome = service.vread(resource_type, resource_id, version_id)
    return render(outcome, request, uow.base_url)
