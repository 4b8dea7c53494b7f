"""Registering clients, and the SMART Backend Services token exchange
(hl7.org/fhir/smart-app-launch/backend-services.html): a ``client_credentials`` grant
authenticated by a ``private_key_jwt`` client assertion, verified with the client's
registered public keys."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fhir_exchange.auth.models import AuthClient, UsedAssertion
from fhir_exchange.auth.scopes import Scopes, parse_scope
from fhir_exchange.auth.tokens import TOKEN_LIFETIME, TokenSigner

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("RS384", "ES384")  # SMART Backend Services: servers SHALL support both
MAX_ASSERTION_LIFETIME = timedelta(minutes=5)
CLOCK_SKEW = timedelta(seconds=30)
SIGNED_USER_HEADER = "X-On-Behalf-Of"


class AuthError(Exception):
    """A refused authentication or authorisation: an OAuth error code and an HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def _keys(jwks: dict[str, Any]) -> list[jwt.PyJWK]:
    try:
        keys = jwt.PyJWKSet.from_dict(jwks).keys
    except jwt.PyJWKSetError as exc:
        raise AuthError("invalid_request", f"the JWKS holds no usable key: {exc}") from None
    for key in keys:
        if key.key_type not in ("RSA", "EC"):
            raise AuthError("invalid_request", f"key {key.key_id or '(no kid)'} is {key.key_type}; RSA or EC keys only")
        if getattr(key, "_jwk_data", {}).get("d") is not None:
            raise AuthError("invalid_request", "the JWKS holds a private key: register the public keys only")
    return keys


@dataclass(frozen=True, slots=True)
class RegisteredClient:
    client_id: str
    institution: str
    scopes: str


class ClientRegistry:
    def __init__(self, session: Session) -> None:
        self.session = session

    def register(self, institution: str, jwks: dict[str, Any], scopes: str, name: str | None = None,
                 client_id: str | None = None) -> RegisteredClient:
        """Register a client for an institution (which must be in the registry) with its
        public JWKS and the scopes it may be granted."""
        from fhir_exchange.store.models import ResourceRow

        exists = self.session.execute(
            select(ResourceRow.pk).where(ResourceRow.res_type == "Organization", ResourceRow.res_id == institution,
                                         ResourceRow.deleted.is_(False))
        ).first()
        if exists is None:
            raise AuthError("invalid_request", f"Organization/{institution} is not a registered institution")
        _keys(jwks)
        parsed = Scopes.parse(scopes)
        bad = [s for s in parsed.granted if parse_scope(s) is None and s != "baylink/admin"]
        if bad or not parsed.granted:
            raise AuthError("invalid_scope", f"not SMART v2 system scopes: {', '.join(bad) or '(none given)'}")
        client_id = client_id or f"{institution}-{secrets.token_hex(6)}"
        if self.get(client_id) is not None:
            raise AuthError("invalid_request", f"client {client_id} is already registered")
        self.session.add(AuthClient(client_id=client_id, institution=institution, name=name, jwks=jwks,
                                    scopes=str(parsed), active=True, created=datetime.now(UTC)))
        self.session.flush()
        return RegisteredClient(client_id, institution, str(parsed))

    def get(self, client_id: str) -> AuthClient | None:
        return self.session.execute(select(AuthClient).where(AuthClient.client_id == client_id)).scalar_one_or_none()

    def verify_signed_by(self, client: AuthClient, token: str, audience: str | list[str],
                         required: tuple[str, ...]) -> dict[str, Any]:
        """The claims of a JWT the client signed with one of its registered keys."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise AuthError("invalid_client", f"not a JWT: {exc}", 401) from None
        algorithm = header.get("alg")
        if algorithm not in ASSERTION_ALGORITHMS:
            raise AuthError("invalid_client", f"alg {algorithm} is not accepted; sign with RS384 or ES384", 401)
        candidates = [k for k in _keys(client.jwks) if header.get("kid") in (None, k.key_id)]
        last_error: Exception | None = None
        for key in candidates:
            try:
                return jwt.decode(token, key.key, algorithms=[algorithm], audience=audience,
                                  leeway=CLOCK_SKEW, options={"require": list(required)})
            except jwt.InvalidSignatureError as exc:
                last_error = exc
            except jwt.ExpiredSignatureError:
                raise AuthError("invalid_client", "the assertion has expired", 401) from None
            except jwt.InvalidAudienceError:
                raise AuthError("invalid_client", f"aud must be {audience if isinstance(audience, str) else audience[0]}",
                                401) from None
            except jwt.MissingRequiredClaimError as exc:
                raise AuthError("invalid_client", f"the assertion lacks the {exc.claim} claim", 401) from None
            except jwt.InvalidTokenError as exc:
                raise AuthError("invalid_client", f"the assertion is not valid: {exc}", 401) from None
        detail = f" ({last_error})" if last_error else ""
        raise AuthError("invalid_client", f"the signature does not verify with {client.client_id}'s registered keys{detail}",
                        401)


class TokenEndpoint:
    """``POST /auth/token``."""

    def __init__(self, session: Session, signer: TokenSigner, token_urls: list[str]) -> None:
        self.session = session
        self.signer = signer
        self.token_urls = token_urls
        self.clients = ClientRegistry(session)

    def exchange(self, form: dict[str, str]) -> dict[str, Any]:
        if form.get("grant_type") != "client_credentials":
            raise AuthError("unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise AuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = form.get("client_assertion") or ""
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.DecodeError as exc:
            raise AuthError("invalid_client", f"client_assertion is not a JWT: {exc}", 401) from None
        client_id = unverified.get("iss")
        if not client_id or unverified.get("sub") != client_id:
            raise AuthError("invalid_client", "the assertion's iss and sub must both be the client_id", 401)
        client = self.clients.get(client_id)
        if client is None or not client.active:
            raise AuthError("invalid_client", f"client {client_id} is not registered here (or is disabled)", 401)
        claims = self.clients.verify_signed_by(client, assertion, self.token_urls, ("exp", "iss", "sub", "aud", "jti"))
        now = datetime.now(UTC)
        expires = datetime.fromtimestamp(claims["exp"], UTC)
        if expires - now > MAX_ASSERTION_LIFETIME + CLOCK_SKEW:
            raise AuthError("invalid_client", "the assertion's exp is more than 5 minutes ahead", 401)
        self._spend(client_id, str(claims["jti"]), expires)
        requested = Scopes.parse(form.get("scope") or "")
        if not requested.granted:
            raise AuthError("invalid_scope", "ask for scopes, e.g. scope=system/Patient.rs system/Observation.rs")
        granted = requested.within(Scopes.parse(client.scopes))
        if not granted.granted:
            raise AuthError("invalid_scope", f"none of the requested scopes is registered for {client_id} "
                                             f"(it may have: {client.scopes})")
        token = self.signer.issue(client_id, client.institution, str(granted))
        return {"access_token": token.token, "token_type": "bearer", "expires_in": int(TOKEN_LIFETIME.total_seconds()),
                "scope": str(granted)}

    def _spend(self, client_id: str, jti: str, expires: datetime) -> None:
        self.session.execute(delete(UsedAssertion).where(UsedAssertion.expires < datetime.now(UTC) - CLOCK_SKEW))
        try:
            with self.session.begin_nested():
                self.session.execute(insert(UsedAssertion).values(client_id=client_id, jti=jti, expires=expires))
        except IntegrityError:
            raise AuthError("invalid_client", f"jti {jti} was already used: a client assertion is good once", 401) from None
