"""The request context of a FHIR call: from its bearer token (which client, which
institution, which scopes), the purpose of use it declares, and the user it acts for."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import jwt
from fastapi import Request
from sqlalchemy.orm import Session

from fhir_exchange.auth.service import SIGNED_USER_HEADER, AuthError, ClientRegistry
from fhir_exchange.auth.tokens import TokenSigner
from fhir_exchange.errors import FhirError, InvalidRequest
from fhir_exchange.ports import RequestContext

PURPOSE_HEADER = "X-Purpose-Of-Use"
REASON_HEADER = "X-Break-Glass-Reason"


class Unauthorized(FhirError):
    status, code = 401, "login"

    def __init__(self, diagnostics: str) -> None:
        super().__init__(diagnostics, headers={"WWW-Authenticate": 'Bearer realm="BayLink", error="invalid_token"'})


class BearerAuth:
    """Builds the RequestContext of a call, or refuses it: 401 for a missing or bad token,
    400 for a purpose of use outside the allowed codes or a bad on-behalf-of header."""

    def __init__(self, signer: TokenSigner, sessions: Callable[[], Session], purposes: tuple[str, ...],
                 default_purpose: str = "TREAT") -> None:
        self.signer = signer
        self.sessions = sessions
        self.purposes = purposes
        self.default_purpose = default_purpose

    def __call__(self, request: Request) -> RequestContext:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("this request needs an access token: Authorization: Bearer <token> "
                               "(SMART Backend Services; see /fhir/.well-known/smart-configuration)")
        try:
            claims = self.signer.verify(token.strip())
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the access token has expired; ask /auth/token for a new one") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"the access token is not valid: {exc}") from None
        purpose = request.headers.get(PURPOSE_HEADER, self.default_purpose).strip()
        if purpose not in self.purposes:
            raise InvalidRequest(f"{PURPOSE_HEADER} '{purpose}' is not one of {', '.join(self.purposes)} "
                                 "(v3 ActReason purpose of use codes)")
        user, roles = None, ()
        signed_user = request.headers.get(SIGNED_USER_HEADER)
        if signed_user:
            user, roles = self._on_behalf_of(claims["sub"], signed_user, request)
        return RequestContext(
            # always the server's own: per-request caches (the consent gate's) are keyed by it
            request_id=str(uuid.uuid4()),
            client_id=claims["sub"],
            institution=claims["institution"],
            user=user,
            roles=roles,
            purpose_of_use=purpose,
            scopes=tuple(claims["scope"].split()),
            reason=(request.headers.get(REASON_HEADER) or "").strip() or None,
        )

    def _on_behalf_of(self, client_id: str, token: str, request: Request) -> tuple[str, tuple[str, ...]]:
        """The user a client acts for, in a JWT it signed with its registered key:
        ``sub`` a Practitioner or PractitionerRole reference, ``roles`` what the institution
        lets that user do, ``aud`` the FHIR base URL, ``exp`` at most 5 minutes ahead."""
        audience = str(request.base_url).rstrip("/") + "/fhir"
        with self.sessions() as session:
            client = ClientRegistry(session).get(client_id)
            if client is None or not client.active:
                raise Unauthorized(f"client {client_id} is no longer registered")
            try:
                claims = ClientRegistry(session).verify_signed_by(client, token, audience, ("sub", "exp", "iss"))
            except AuthError as exc:
                raise InvalidRequest(f"{SIGNED_USER_HEADER}: {exc.description}") from None
        subject = str(claims["sub"])
        if claims["iss"] != client_id or not subject.startswith(("Practitioner/", "PractitionerRole/")):
            raise InvalidRequest(f"{SIGNED_USER_HEADER}: iss must be the client ({client_id}) and sub a "
                                 "Practitioner/… or PractitionerRole/… reference")
        roles = claims.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidRequest(f"{SIGNED_USER_HEADER}: roles must be a list of strings")
        return subject, tuple(roles)
