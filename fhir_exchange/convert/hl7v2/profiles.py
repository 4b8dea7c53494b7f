"""Local flavours as data: which identity documents PID-3 carries and how they are labelled,
which code systems local names stand for, how undeclared bytes are decoded. One reader serves
every flavour; ``tables/hk.json``, ``tables/cn.json`` and ``tables/mo.json`` say what differs,
on top of ``tables/common.json``. ``Source.profile`` None (international) uses the common
tables alone."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir_exchange.convert.hl7v2.tables import COMMON, PROFILE_NAMES, load
from fhir_exchange.identity.documents import (
    PASSPORT_PREFIX,
    InvalidIdentifier,
    canonical,
    naming_systems,
    validate_passport,
)

KIND_EXTENSION = "http://baylink.example.org/fhir/StructureDefinition/identifier-kind"


@cache
def document_systems() -> dict[str, tuple[str, str | None]]:
    """kind → (preferred system, v2-0203 type code) of the identity documents BayLink publishes."""
    found: dict[str, tuple[str, str | None]] = {}
    for resource in naming_systems():
        kind = next(e["valueCode"] for e in resource.get("extension") or [] if e.get("url") == KIND_EXTENSION)
        system = next(u["value"] for u in resource["uniqueId"] if u["type"] == "uri" and u.get("preferred"))
        type_code = next((c.get("code") for c in (resource.get("type") or {}).get("coding") or []), None)
        found[kind] = (system, type_code)
    return found


@dataclass(frozen=True, slots=True)
class DocumentRule:
    kind: str
    authorities: frozenset[str]
    types: frozenset[str]

    def matches(self, authority: str, type_code: str) -> bool:
        return bool((authority and authority in self.authorities) or (type_code and type_code in self.types))


@dataclass(frozen=True, slots=True)
class Document:
    kind: str
    system: str
    value: str  # canonical
    type_code: str | None


class Profile:
    def __init__(self, name: str | None, data: dict[str, Any]) -> None:
        self.name = name
        self.timezone: str = data.get("timezone", "+08:00")
        self.undeclared_charsets: tuple[str, ...] = tuple(data.get("undeclared_charsets") or ("gb18030",))
        self.coding_systems: dict[str, str] = {**COMMON["coding_systems"], **(data.get("coding_systems") or {})}
        self.local_codes: dict[str, str] = dict(data.get("local_codes") or {})
        self.local_names: tuple[str, ...] = tuple(data.get("local_code_system_names") or ())
        rules = [*(data.get("identity_documents") or []), *COMMON["identity_documents"]]
        self.document_rules = tuple(
            DocumentRule(r["kind"], frozenset(a.upper() for a in r.get("authorities") or ()),
                         frozenset(t.upper() for t in r.get("types") or ())) for r in rules)
        preference = data.get("document_preference") or COMMON["document_preference"]
        self.preference = {kind: rank for rank, kind in enumerate(preference)}

    # --- code systems --------------------------------------------------------------------------

    def is_local_name(self, name: str) -> bool:
        upper = name.upper()
        return any(upper == p or (p.endswith("*") and upper.startswith(p[:-1])) for p in self.local_names)

    def coding_system(self, name: str, context: str | None = None) -> str | None:
        """The URI a v2 coding-system name (CWE-3, table 0396) stands for; for a local name
        (``L``, ``99xxx``) or none at all, the flavour's local table for this context
        (``observation``, ``medication``, ``diagnosis``) if it has one; None otherwise."""
        name = name.strip()
        if name:
            upper = name.upper()
            if upper in self.coding_systems:
                return self.coding_systems[upper]
            if name in self.coding_systems:
                return self.coding_systems[name]
            if upper.startswith("HL7") and upper[3:].isdigit():
                return f"http://terminology.hl7.org/CodeSystem/v2-{int(upper[3:]):04d}"
            if name.startswith(("http://", "https://", "urn:")):
                return name
            if context and self.is_local_name(name):
                return self.local_codes.get(context)
            return None
        return self.local_codes.get(context) if context else None

    # --- identity documents ------------------------------------------------------------------

    def document(self, value: str, authority: str, type_code: str) -> tuple[Document | None, str | None]:
        """The identity document a PID-3 identifier is (value, CX-4 authority, CX-5 type), with
        its number in canonical form, or (None, why it was not taken as one). Rules are tried in
        the flavour's order; a type code alone (``NI``) may stand for several documents, so a
        number that fails one document's check is tried as the next; a number whose authority
        names the document (``HKSARG``) and fails its check is reported, not guessed at."""
        authority, type_code = authority.strip().upper(), type_code.strip().upper()
        systems = document_systems()
        failures: dict[str, str] = {}
        for rule in self.document_rules:
            if not rule.matches(authority, type_code):
                continue
            labelled = bool(authority) and authority in rule.authorities
            if rule.kind in failures:
                if labelled:
                    return None, failures[rule.kind]
                continue
            try:
                if rule.kind == "passport":
                    if not (len(authority) == 3 and authority.isalpha()):
                        raise InvalidIdentifier("a passport needs its issuing state (ICAO code) as the authority")
                    return Document("passport", f"{PASSPORT_PREFIX}{authority}", validate_passport(value), "PPN"), None
                system, type_of = systems[rule.kind]
                _, number = canonical(system, value)
            except InvalidIdentifier as error:
                failures[rule.kind] = f"'{value}' is labelled as a {rule.kind} number but is not valid: {error}"
                if labelled:
                    return None, failures[rule.kind]
                continue
            return Document(rule.kind, system, number, type_of), None
        return None, None

    def rank(self, kind: str) -> int:
        return self.preference.get(kind, len(self.preference))


@cache
def profile(name: str | None) -> Profile:
    if name is None or name not in PROFILE_NAMES:
        return Profile(None, {})
    return Profile(name, load(name))
