"""Access tokens BayLink issues: JWTs signed with the server's own ES256 key (held outside
git: from settings, or in development a key file under ``var/``), checked on every request
without a database round trip. They live five minutes."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

TOKEN_LIFETIME = timedelta(minutes=5)
ALGORITHM = "ES256"


def generate_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def development_key(path: Path) -> bytes:
    """The development signing key, made on first use (mode 0600). Never used in production,
    where the key comes from settings."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(generate_key_pem())
    return path.read_bytes()


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    claims: dict[str, Any]


class TokenSigner:
    def __init__(self, private_key_pem: bytes, issuer: str = "baylink") -> None:
        self._private = serialization.load_pem_private_key(private_key_pem, password=None)
        self._public = self._private.public_key()
        self.issuer = issuer

    def issue(self, client_id: str, institution: str, scope: str, *, lifetime: timedelta = TOKEN_LIFETIME,
              now: datetime | None = None) -> AccessToken:
        moment = now or datetime.now(UTC)
        claims = {
            "iss": self.issuer,
            "sub": client_id,
            "institution": institution,
            "scope": scope,
            "iat": int(moment.timestamp()),
            "exp": int((moment + lifetime).timestamp()),
            "jti": str(uuid.uuid4()),
        }
        return AccessToken(jwt.encode(claims, self._private, algorithm=ALGORITHM), claims)

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token this server issued and that has not expired; raises
        ``jwt.InvalidTokenError`` otherwise."""
        return jwt.decode(token, self._public, algorithms=[ALGORITHM], issuer=self.issuer,
                          options={"require": ["exp", "iat", "sub", "scope", "institution"]})
