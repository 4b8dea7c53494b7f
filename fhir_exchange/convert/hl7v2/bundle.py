"""The transaction Bundle one message becomes.

- ``put``: a conditional update on the resource's business identifier (``PUT
  Patient?identifier=system|value``), for what later messages update: the patient, the visit,
  orders, results, documents, appointments. A resend or a later message (ADT^A08, a corrected
  result) updates the same resource rather than adding another.
- ``create_once``: a conditional create (``ifNoneExist``) for what is referred to but not
  owned by the message: practitioners and organisations with an identifier.
- ``post``: everything else.

Within one Bundle the same key is written once: a second write of it returns the first entry
(the server matches conditional URLs before applying any entry, so two entries with one key
would create two resources). Every resource refers to the others by their ``urn:uuid:``
fullUrls, and carries the message control id and sending facility as ``meta.tag``.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

MESSAGE_TAG = "http://baylink.example.org/fhir/CodeSystem/hl7v2-message-control-id"
FACILITY_TAG = "http://baylink.example.org/fhir/CodeSystem/hl7v2-sending-facility"


def _escape(value: str) -> str:
    """A search value with FHIR's escapes for \\ , | $ (search.html#escaping), URL-encoded."""
    for character in ("\\", ",", "|", "$"):
        value = value.replace(character, "\\" + character)
    return quote(value, safe="()-._~:/@!*'")


def token(identifier: dict[str, Any]) -> str:
    return f"{quote(identifier['system'], safe=':/._-~')}|{_escape(identifier['value'])}"


def identifier_query(resource_type: str, identifiers: list[dict[str, Any]]) -> str:
    """``Type?identifier=s1|v1,s2|v2`` (a comma is OR): matches the resource carrying any of them."""
    return f"{resource_type}?identifier={','.join(token(i) for i in identifiers)}"


class BundleBuilder:
    def __init__(self, tags: list[dict[str, str]]) -> None:
        self.tags = tags
        self.entries: list[dict[str, Any]] = []
        self._keys: dict[str, dict[str, Any]] = {}

    def _add(self, resource: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        resource.setdefault("meta", {})["tag"] = [dict(tag) for tag in self.tags]
        entry = {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": resource, "request": request}
        self.entries.append(entry)
        return entry

    def existing(self, key: str) -> dict[str, Any] | None:
        return self._keys.get(key)

    def resource(self, full_url: str) -> dict[str, Any]:
        return next(e["resource"] for e in self.entries if e["fullUrl"] == full_url)

    def post(self, resource: dict[str, Any]) -> str:
        return self._add(resource, {"method": "POST", "url": resource["resourceType"]})["fullUrl"]

    def put(self, resource: dict[str, Any], identifiers: list[dict[str, Any]]) -> str:
        """A conditional update on any of ``identifiers``; the same key twice → the first entry."""
        url = identifier_query(resource["resourceType"], identifiers)
        found = self._keys.get(url)
        if found is not None:
            return found["fullUrl"]
        entry = self._add(resource, {"method": "PUT", "url": url})
        self._keys[url] = entry
        return entry["fullUrl"]

    def create_once(self, resource: dict[str, Any], identifier: dict[str, Any] | None, key: str | None = None) -> str:
        """A conditional create on ``identifier`` (or a plain create deduplicated by ``key``
        within this Bundle when there is no identifier)."""
        if identifier is not None:
            key = f"{resource['resourceType']}?identifier={token(identifier)}"
        if key is not None and key in self._keys:
            return self._keys[key]["fullUrl"]
        request: dict[str, Any] = {"method": "POST", "url": resource["resourceType"]}
        if identifier is not None:
            request["ifNoneExist"] = f"identifier={token(identifier)}"
        entry = self._add(resource, request)
        if key is not None:
            self._keys[key] = entry
        return entry["fullUrl"]

    def build(self) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "transaction", "entry": self.entries}
