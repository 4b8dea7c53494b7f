"""Identity documents seen at a Bay Area hospital: how each is written, how its check
character is computed, and the identifier system BayLink publishes for it.

Facts and sources: ``../shared/reference/identifiers.md``. The systems, their aliases and
their names are data (``naming-systems.json``, published as NamingSystem resources); the
check algorithms, being algorithms, are code, keyed by the NamingSystem's ``kind``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import orjson

NAMING_SYSTEMS_FILE = Path(__file__).with_name("naming-systems.json")
KIND_EXTENSION = "http://baylink.example.org/fhir/StructureDefinition/identifier-kind"
PASSPORT_PREFIX = "http://hl7.org/fhir/sid/passport-"  # + ICAO 3-letter issuing state (FHIR identifier registry)


class InvalidIdentifier(ValueError):
    """The value is not a valid number of its document; the message says why."""


# --- check characters ------------------------------------------------------------------------------

_HKID = re.compile(r"^([A-Z]{1,2})([0-9]{6})\(?([0-9A])\)?$")


def hkid_check_character(prefix: str, digits: str) -> str:
    """HKID check character (identifiers.md): letters A=10…Z=35, a single-letter prefix padded
    on the left with a space worth 36; weights 9…2 over the 8 positions; r = sum mod 11;
    r=0 → '0', r=1 → 'A', else 11 − r."""
    padded = prefix if len(prefix) == 2 else " " + prefix
    values = [36 if ch == " " else ord(ch) - ord("A") + 10 for ch in padded] + [int(d) for d in digits]
    remainder = sum(v * w for v, w in zip(values, range(9, 1, -1), strict=True)) % 11
    return "0" if remainder == 0 else "A" if remainder == 1 else str(11 - remainder)


def validate_hkid(value: str) -> str:
    text = value.strip().upper().replace(" ", "")
    match = _HKID.match(text)
    if not match:
        raise InvalidIdentifier("an HKID is 1–2 letters, 6 digits and a check character 0–9 or A, e.g. A123456(3)")
    prefix, digits, check = match.groups()
    expected = hkid_check_character(prefix, digits)
    if check != expected:
        raise InvalidIdentifier(f"the check character is {check} but {prefix}{digits} needs {expected}")
    return f"{prefix}{digits}({check})"


_RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RIC = re.compile(r"^[0-9]{17}[0-9X]$")


def resident_id_check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 as GB 11643-1999 uses it (identifiers.md)."""
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, _RIC_WEIGHTS, strict=True)) % 11]


def _validate_ric_layout(value: str, what: str) -> str:
    text = value.strip().upper()
    if not _RIC.match(text):
        raise InvalidIdentifier(f"a {what} number is 18 characters: 17 digits and a check character 0–9 or X")
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise InvalidIdentifier(f"the birth date it carries ({text[6:14]}) is not a real date") from None
    if born > date.today():
        raise InvalidIdentifier(f"the birth date it carries ({born.isoformat()}) is in the future")
    expected = resident_id_check_character(text[:17])
    if text[17] != expected:
        raise InvalidIdentifier(f"the check character is {text[17]} but the first 17 digits need {expected}")
    return text


def validate_resident_id(value: str) -> str:
    return _validate_ric_layout(value, "Resident Identity Card")


# Residence Permits for Hong Kong, Macao and Taiwan residents carry these address codes
# (identifiers.md; 820000 for Macao is marked unverified there).
RESIDENCE_PERMIT_AREAS = ("810000", "820000", "830000")


def validate_residence_permit(value: str) -> str:
    text = _validate_ric_layout(value, "Residence Permit")
    if text[:6] not in RESIDENCE_PERMIT_AREAS:
        raise InvalidIdentifier(f"a Residence Permit number starts with {', '.join(RESIDENCE_PERMIT_AREAS)}, not {text[:6]}")
    return text


_TRAVEL_PERMIT = re.compile(r"^([HM][0-9]{8}|[HM][0-9]{10}|[A-Z]{2}[0-9]{6,7})$")


def validate_mainland_travel_permit(value: str) -> str:
    """Format only: no check character is published (identifiers.md)."""
    text = value.strip().upper()
    if not _TRAVEL_PERMIT.match(text):
        raise InvalidIdentifier("a Mainland Travel Permit number is H or M and 8 (or 10) digits, e.g. H12345678")
    return text


_EXIT_ENTRY = re.compile(r"^[CW][0-9]{8}$")


def validate_exit_entry_permit(value: str) -> str:
    """Format only: no check character is published (identifiers.md)."""
    text = value.strip().upper()
    if not _EXIT_ENTRY.match(text):
        raise InvalidIdentifier("an Exit-Entry Permit number is C or W and 8 digits, e.g. C12345678")
    return text


_MACAO_BIR = re.compile(r"^([157])/?([0-9]{6})/?\(?([0-9])\)?$")


def validate_macao_bir(value: str) -> str:
    """Format only: the check-digit algorithm is not public (identifiers.md). Written
    ``1/234567/8`` or ``1234567(8)``; stored as ``1234567(8)``."""
    match = _MACAO_BIR.match(value.strip().replace(" ", ""))
    if not match:
        raise InvalidIdentifier("a Macao Resident Identity Card number is 8 digits starting 1, 5 or 7, "
                                "written 1/234567/8 or 1234567(8)")
    first, middle, check = match.groups()
    return f"{first}{middle}({check})"


_PASSPORT = re.compile(r"^[A-Z0-9]{5,9}$")


def validate_passport(value: str) -> str:
    """A passport number as the MRZ document-number field holds it: 5 to 9 letters and digits.
    Its ICAO 9303 check digit sits in the machine-readable zone, not in the number, so only
    the format can be checked here."""
    text = value.strip().upper().replace(" ", "")
    if not _PASSPORT.match(text):
        raise InvalidIdentifier("a passport number is 5 to 9 letters and digits")
    return text


VALIDATORS: dict[str, Callable[[str], str]] = {
    "hkid": validate_hkid,
    "cn-resident-id": validate_resident_id,
    "cn-residence-permit": validate_residence_permit,
    "cn-travel-permit-hkmo": validate_mainland_travel_permit,
    "cn-exit-entry-permit": validate_exit_entry_permit,
    "mo-bir": validate_macao_bir,
    "passport": validate_passport,
}


# --- naming systems --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentKind:
    kind: str
    system: str  # the preferred uri
    aliases: tuple[str, ...]
    type_code: str | None  # v2-0203 identifier type
    name: str
    validate: Callable[[str], str]


@cache
def naming_systems() -> tuple[dict[str, Any], ...]:
    """The NamingSystem resources BayLink publishes for identity documents."""
    document = orjson.loads(NAMING_SYSTEMS_FILE.read_bytes())
    return tuple(entry["resource"] for entry in document["entry"])


@cache
def _by_system() -> dict[str, DocumentKind]:
    result: dict[str, DocumentKind] = {}
    for resource in naming_systems():
        kind = next(e["valueCode"] for e in resource["extension"] if e["url"] == KIND_EXTENSION)
        uris = [u["value"] for u in resource["uniqueId"] if u["type"] == "uri"]
        preferred = next(u["value"] for u in resource["uniqueId"] if u["type"] == "uri" and u.get("preferred"))
        type_code = next((c["code"] for c in (resource.get("type") or {}).get("coding") or []), None)
        document = DocumentKind(kind, preferred, tuple(u for u in uris if u != preferred), type_code, resource["type"]["text"],
                                VALIDATORS[kind])
        for uri in uris:
            result[uri] = document
    return result


def document_for(system: str | None) -> DocumentKind | None:
    """The identity document an identifier system (or one of its aliases) names; passports
    by the FHIR pattern ``http://hl7.org/fhir/sid/passport-<ICAO state>``."""
    if not system:
        return None
    found = _by_system().get(system)
    if found is None and system.startswith(PASSPORT_PREFIX) and re.fullmatch(r"[A-Z]{3}", system[len(PASSPORT_PREFIX):]):
        return DocumentKind("passport", system, (), "PPN", f"Passport ({system[len(PASSPORT_PREFIX):]})", validate_passport)
    return found


def canonical(system: str | None, value: str) -> tuple[str | None, str]:
    """(preferred system, canonical value) of an identifier of a known document; unknown
    systems pass through unchanged. Raises ``InvalidIdentifier`` for a bad number."""
    document = document_for(system)
    if document is None:
        return system, value
    return document.system, document.validate(value)
