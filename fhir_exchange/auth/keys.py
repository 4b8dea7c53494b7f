"""The client's side of SMART Backend Services, for the CLI, the demo and the tests: make a
key pair and its public JWKS, and sign a client assertion (RS384 for RSA keys, ES384 for
P-384 EC keys)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def generate_private_key_pem(kind: str = "EC") -> bytes:
    key: Any = ec.generate_private_key(ec.SECP384R1()) if kind == "EC" else rsa.generate_private_key(65537, 3072)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _private(pem: bytes) -> Any:
    return serialization.load_pem_private_key(pem, password=None)


def algorithm_for(pem: bytes) -> str:
    return "ES384" if isinstance(_private(pem), ec.EllipticCurvePrivateKey) else "RS384"


def key_id(pem: bytes) -> str:
    """A stable kid: the JWK thumbprint (RFC 7638) of the public key."""
    public = _private(pem).public_key()
    algorithm = jwt.algorithms.ECAlgorithm if algorithm_for(pem) == "ES384" else jwt.algorithms.RSAAlgorithm
    jwk = json.loads(algorithm.to_jwk(public))
    members = {k: jwk[k] for k in sorted(jwk) if k in ("crv", "e", "kty", "n", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":")).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def public_jwks(pem: bytes) -> dict[str, Any]:
    public = _private(pem).public_key()
    alg = algorithm_for(pem)
    algorithm = jwt.algorithms.ECAlgorithm if alg == "ES384" else jwt.algorithms.RSAAlgorithm
    jwk = json.loads(algorithm.to_jwk(public))
    jwk.update({"kid": key_id(pem), "alg": alg, "use": "sig"})
    return {"keys": [jwk]}


def client_assertion(client_id: str, pem: bytes, token_url: str, *, lifetime: timedelta = timedelta(minutes=4),
                     jti: str | None = None, now: datetime | None = None, extra: dict[str, Any] | None = None) -> str:
    moment = now or datetime.now(UTC)
    claims = {"iss": client_id, "sub": client_id, "aud": token_url, "exp": int((moment + lifetime).timestamp()),
              "iat": int(moment.timestamp()), "jti": jti or str(uuid.uuid4()), **(extra or {})}
    return jwt.encode(claims, _private(pem), algorithm=algorithm_for(pem), headers={"kid": key_id(pem)})


def on_behalf_of(client_id: str, pem: bytes, fhir_base: str, user: str, roles: list[str] | None = None,
                 *, lifetime: timedelta = timedelta(minutes=4)) -> str:
    """The signed ``X-On-Behalf-Of`` header value naming the user a request is made for."""
    moment = datetime.now(UTC)
    claims = {"iss": client_id, "sub": user, "aud": fhir_base, "exp": int((moment + lifetime).timestamp()),
              "iat": int(moment.timestamp()), "roles": roles or []}
    return jwt.encode(claims, _private(pem), algorithm=algorithm_for(pem), headers={"kid": key_id(pem)})
