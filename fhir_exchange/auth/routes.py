"""``POST /auth/token`` (SMART Backend Services) and ``POST /auth/clients`` (registering a
client, for operators holding the ``baylink/admin`` scope). OAuth errors are JSON
``{"error", "error_description"}`` as RFC 6749 §5.2 says, not OperationOutcomes."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fhir_exchange.auth.scopes import ADMIN_SCOPE
from fhir_exchange.auth.service import AuthError, ClientRegistry, TokenEndpoint
from fhir_exchange.errors import FhirError

router = APIRouter()


def _oauth_error(exc: AuthError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="BayLink"'} if exc.status == 401 else None
    return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=exc.status,
                        headers=headers)


def token_urls(request: Request) -> list[str]:
    runtime = request.app.state.fhir
    urls = [str(request.url).split("?")[0]]
    if runtime.public_base_url:
        urls.insert(0, runtime.public_base_url.rstrip("/").removesuffix("/fhir") + "/auth/token")
    return urls


@router.post("/auth/token")
async def token(request: Request) -> JSONResponse:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return _oauth_error(AuthError("invalid_request", "send the grant as application/x-www-form-urlencoded"))
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    runtime = request.app.state.fhir
    with runtime.sessions() as session:
        endpoint = TokenEndpoint(session, runtime.signer, token_urls(request))
        try:
            body = endpoint.exchange(form)
        except AuthError as exc:
            session.commit()  # a spent jti stays spent even when the grant is refused
            return _oauth_error(exc)
        session.commit()
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@router.post("/auth/clients")
async def register_client(request: Request) -> JSONResponse:
    runtime = request.app.state.fhir
    try:
        context = runtime.context_provider(request)
    except FhirError as exc:
        return _oauth_error(AuthError("invalid_token", str(exc), exc.status))
    if ADMIN_SCOPE not in context.scopes:
        return _oauth_error(AuthError("insufficient_scope", f"registering clients needs the {ADMIN_SCOPE} scope", 403))
    try:
        body: Any = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        return _oauth_error(AuthError("invalid_request", f"the body is not JSON: {exc}"))
    if not isinstance(body, dict) or not isinstance(body.get("jwks"), dict) or not body.get("institution"):
        return _oauth_error(AuthError("invalid_request", 'send {"institution": ORG_ID, "jwks": {...}, "scope": "..."}'))
    with runtime.sessions() as session, session.begin():
        try:
            client = ClientRegistry(session).register(body["institution"], body["jwks"], body.get("scope") or "system/*.rs",
                                                      body.get("name"))
        except AuthError as exc:
            return _oauth_error(exc)
    return JSONResponse({"client_id": client.client_id, "institution": client.institution, "scope": client.scopes},
                        status_code=201)
