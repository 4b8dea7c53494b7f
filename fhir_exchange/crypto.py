"""Identifiers that name a person, encrypted at rest.

Identity document numbers (HKID, resident ID, permits, Macao BIR, passports: every system
``identity.documents`` knows) are sealed with AES-256-GCM before a resource is stored, in
the current and the historical version alike, and opened again when a resource is released.
The identifier's system is the associated data, so a sealed value cannot be moved to
another system. Each sealed value names its key id, so keys rotate: add a key, make it
current, and ``baylink keys rotate`` re-seals what the old keys sealed.

Search stays exact through a blind index: the token index keeps HMAC-SHA256(system|value)
under a separate key instead of the number, and a search for ``identifier=system|value``
looks up the same HMAC. (So an identity document search needs its system.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fhir_exchange.identity.documents import document_for
from fhir_exchange.validation import PERSON_TYPES

BINARY_CONTEXT = "baylink:binary"  # the AAD under which Binary.data is sealed

PREFIX = "enc1"
BLIND_PREFIX = "blind:"


class KeyError_(Exception):
    """A sealed value names a key this server does not hold, or fails authentication."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key() -> str:
    return _b64(AESGCM.generate_key(bit_length=256))


@dataclass(frozen=True)
class IdentifierVault:
    keys: dict[str, bytes]  # key id -> 32-byte AES key
    current: str
    blind_key: bytes

    @classmethod
    def from_text(cls, keys: str, current: str, blind_key: str) -> IdentifierVault:
        """``keys`` is ``kid:base64url,kid:base64url``; the keys are 32 bytes."""
        parsed = {}
        for item in keys.split(","):
            kid, _, material = item.strip().partition(":")
            raw = _unb64(material)
            if not kid or len(raw) != 32:
                raise ValueError(f"identifier key '{kid}' must be kid:<32 bytes, base64url>")
            parsed[kid] = raw
        if current not in parsed:
            raise ValueError(f"the current identifier key id '{current}' is not among the keys ({', '.join(parsed)})")
        blind = _unb64(blind_key)
        if len(blind) < 32:
            raise ValueError("the blind index key must be at least 32 bytes (base64url)")
        return cls(parsed, current, blind)

    # --- values ------------------------------------------------------------------------------

    def seal(self, system: str, value: str) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys[self.current]).encrypt(nonce, value.encode(), system.encode())
        return f"{PREFIX}.{self.current}.{_b64(nonce + sealed)}"

    def open(self, system: str, envelope: str) -> str:
        _, kid, payload = envelope.split(".", 2)
        key = self.keys.get(kid)
        if key is None:
            raise KeyError_(f"an identifier is sealed with key '{kid}', which this server does not hold")
        raw = _unb64(payload)
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], system.encode()).decode()
        except InvalidTag:
            raise KeyError_("a sealed identifier failed authentication (altered, or moved to another system)") from None

    @staticmethod
    def is_sealed(value: Any) -> bool:
        return isinstance(value, str) and value.startswith(PREFIX + ".")

    @staticmethod
    def key_id(envelope: str) -> str:
        return envelope.split(".", 2)[1]

    def blind(self, system: str, value: str) -> str:
        return hmac.new(self.blind_key, f"{system}|{value}".encode(), hashlib.sha256).hexdigest()

    def seal_text(self, text: str) -> str:
        return self.seal("baylink:text", text)

    def open_text(self, text: str) -> str:
        return self.open("baylink:text", text) if self.is_sealed(text) else text

    # --- documents -----------------------------------------------------------------------------

    def protect(self, document: dict[str, Any]) -> dict[str, Any]:
        """The document as it is stored: person identity numbers sealed."""
        return self._map(document, lambda system, value: value if self.is_sealed(value) else self.seal(system, value))

    def reveal(self, document: dict[str, Any]) -> dict[str, Any]:
        """The document as it is released: sealed numbers opened."""
        return self._map(document, lambda system, value: self.open(system, value) if self.is_sealed(value) else value)

    def reseal(self, document: dict[str, Any]) -> dict[str, Any]:
        """Sealed numbers under an older key, sealed again under the current one."""
        def again(system: str, value: str) -> str:
            if self.is_sealed(value) and self.key_id(value) != self.current:
                return self.seal(system, self.open(system, value))
            return value

        return self._map(document, again)

    @staticmethod
    def _map(document: dict[str, Any], change: Any) -> dict[str, Any]:
        if document.get("resourceType") == "Binary":
            data = document.get("data")
            if not isinstance(data, str):
                return document
            new = change(BINARY_CONTEXT, data)
            return {**document, "data": new} if new != data else document
        if document.get("resourceType") not in PERSON_TYPES or not document.get("identifier"):
            return document
        identifiers = []
        changed = False
        for identifier in document["identifier"]:
            system, value = identifier.get("system"), identifier.get("value")
            if isinstance(value, str) and document_for(system) is not None:
                new = change(system, value)
                changed = changed or new != value
                identifiers.append({**identifier, "value": new})
            else:
                identifiers.append(identifier)
        return {**document, "identifier": identifiers} if changed else document

    def redact_query(self, query: str) -> str:
        """A query (``Type?a=b&…``, ``$op a=b&…`` or ``a=b&…``) with identity document numbers
        replaced by their blind index."""
        cut = min((i for i in (query.find("?"), query.find(" ")) if i >= 0), default=-1)
        head, query = (query[: cut + 1], query[cut + 1 :]) if cut >= 0 else ("", query)
        items = []
        for key, value in parse_qsl(query, keep_blank_values=True):
            system, bar, code = value.rpartition("|")
            if bar and code and document_for(system) is not None:
                value = f"{system}|{BLIND_PREFIX}{self.blind(system, code)}"
            items.append((key, value))
        return head + urlencode(items)


_vault: IdentifierVault | None = None


def configure(vault: IdentifierVault) -> None:
    """Set the process's vault (the composition root does, from settings)."""
    global _vault
    _vault = vault


def vault() -> IdentifierVault:
    if _vault is None:
        raise RuntimeError("no identifier keys configured: the composition root must call fhir_exchange.crypto.configure")
    return _vault
