"""HL7 v3 data types (as CDA R2 writes them) to FHIR R4 data types: TS, IVL_TS, II, PN,
AD, TEL, PQ, CD and friends. Malformed values are ``ConversionError``s at their element."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from fhir_exchange.convert.base import ConversionError
from fhir_exchange.convert.cda.context import Context
from fhir_exchange.convert.cda.tables import code_systems, identifier_systems, value_map
from fhir_exchange.convert.cda.xml import Element, attr, child, children, elements, fail, local, null, text, xsi_type
from fhir_exchange.identity.documents import InvalidIdentifier, document_for

OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d+)?([+-]\d{4})?$")
UCUM = "http://unitsofmeasure.org"
REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
UNIT_LIKE_UCUM = re.compile(r"^[!-\]_-~]+$")  # printable ASCII but ^, no spaces: as UCUM spells units


# --- time -----------------------------------------------------------------------------------


def _ts_parts(value: str, el: Element) -> tuple[str, ...]:
    match = TS.match(value)
    if not match:
        raise fail(f"'{value}' is not an HL7 timestamp (YYYYMMDDHHMMSS[.S][+ZZZZ])", el)
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        if day:
            date(int(year), int(month), int(day))
        elif month and not 1 <= int(month) <= 12:
            raise ValueError
        if hour and (int(hour) > 23 or int(minute or 0) > 59 or int(second or 0) > 59):
            raise ValueError
        if offset and (int(offset[1:3]) > 14 or int(offset[3:5]) > 59):
            raise ValueError
    except ValueError:
        raise fail(f"'{value}' is not a real date and time", el) from None
    return year, month or "", day or "", hour or "", minute or "", second or "", fraction or "", offset or ""


def date_time(ctx: Context, el: Element | None, *, strict: bool = False) -> str | None:
    """A TS as FHIR dateTime. A time without a UTC offset takes the document's default
    offset (Bay Area documents: +08:00); where there is none it is kept to the day. A
    malformed timestamp is an error where ``strict`` (the document's own time), else it is
    left out with a warning."""
    if el is None or null(el):
        return None
    value = attr(el, "value")
    if not value:
        return None
    try:
        year, month, day, hour, minute, second, fraction, offset = _ts_parts(value, el)
    except ConversionError as exc:
        if strict:
            raise
        ctx.warn(f"{exc.message}: left out", el)
        return None
    result = year + (f"-{month}" if month else "") + (f"-{day}" if day else "")
    if not hour:
        return result
    if not offset and not ctx.default_offset:
        ctx.warn("times without a UTC offset are kept to the day", once="offset")
        return result
    zone = f"{offset[:3]}:{offset[3:]}" if offset else ctx.default_offset
    return f"{result}T{hour}:{minute or '00'}:{second or '00'}{fraction[:10] if fraction else ''}{zone}"


def date_only(ctx: Context, el: Element | None) -> str | None:
    value = date_time(ctx, el)
    return value[:10] if value else None


def instant(ctx: Context, el: Element | None) -> str | None:
    """A TS as FHIR instant (to the second, with an offset); None if it is less precise."""
    value = date_time(ctx, el)
    return value if value and "T" in value else None


def period(ctx: Context, el: Element | None) -> dict[str, str] | None:
    """IVL_TS (low/high, or a single value) as a Period."""
    if el is None or (null(el) and not elements(el)):
        return None
    result: dict[str, str] = {}
    if attr(el, "value"):
        start = date_time(ctx, el)
        if start:
            result["start"] = start
    low, high = child(el, "low"), child(el, "high")
    if low is not None and (start := date_time(ctx, low)):
        result["start"] = start
    if high is not None and (end := date_time(ctx, high)):
        result["end"] = end
    return result or None


def effective(ctx: Context, el: Element | None, prefix: str) -> dict[str, Any]:
    """``{prefix}DateTime`` for a point in time, ``{prefix}Period`` for an interval."""
    if el is None:
        return {}
    if attr(el, "value") and child(el, "low") is None and child(el, "high") is None:
        value = date_time(ctx, el)
        return {f"{prefix}DateTime": value} if value else {}
    found = period(ctx, el)
    if not found:
        return {}
    if list(found) == ["start"] and child(el, "high") is None:
        return {f"{prefix}DateTime": found["start"]}
    return {f"{prefix}Period": found}


# --- identifiers ----------------------------------------------------------------------------


def system_for_root(root: str) -> str | None:
    known = identifier_systems().get(root)
    if known:
        return known
    if OID.match(root):
        return f"urn:oid:{root}"
    if UUID.match(root):
        return f"urn:uuid:{root.lower()}"
    return None


def identifier(ctx: Context, el: Element | None) -> dict[str, Any] | None:
    """II → Identifier: root OID → a BayLink system where the table knows it (identity
    documents: checked and in canonical form), else ``urn:oid:``; an II with only a root is
    the identifier ``urn:oid:<root>`` itself."""
    if el is None or null(el):
        return None
    root, extension = attr(el, "root"), attr(el, "extension")
    if not root:
        return {"value": extension} if extension else None
    if not extension:
        if OID.match(root):
            return {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{root}"}
        if UUID.match(root):
            return {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{root.lower()}"}
        ctx.warn(f"an id with root '{root}' (neither an OID nor a UUID) and no extension is left out", el)
        return None
    system = system_for_root(root)
    if system is None:
        ctx.warn(f"the id root '{root}' is neither an OID nor a UUID: the identifier is kept without a system", el)
        return {"value": extension}
    document = document_for(system)
    if document is not None:
        try:
            extension = document.validate(extension)
        except InvalidIdentifier as exc:
            raise fail(f"'{extension}' is not a valid {document.name} number: {exc}", el) from None
        result: dict[str, Any] = {"system": document.system, "value": extension}
        if document.type_code:
            result["type"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                          "code": document.type_code}], "text": document.name}
        return result
    return {"system": system, "value": extension}


def identifiers(ctx: Context, els: list[Element]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for el in els:
        found = identifier(ctx, el)
        if found and found not in result:
            result.append(found)
    return result


def is_identity_document(found: dict[str, Any]) -> bool:
    return document_for(found.get("system")) is not None


# --- names, addresses, telecom ---------------------------------------------------------------


def human_name(el: Element) -> dict[str, Any] | None:
    if null(el) and not elements(el) and not text(el):
        return None
    result: dict[str, Any] = {}
    parts = elements(el)
    if parts:
        given, prefix, suffix, family = [], [], [], []
        for part in parts:
            value = text(part)
            if not value:
                continue
            kind = local(part)
            if kind == "given":
                given.append(value)
            elif kind == "family":
                family.append(value)
            elif kind == "prefix":
                prefix.append(value)
            elif kind == "suffix":
                suffix.append(value)
        if family:
            result["family"] = " ".join(family)
        if given:
            result["given"] = given
        if prefix:
            result["prefix"] = prefix
        if suffix:
            result["suffix"] = suffix
        loose = " ".join(t.strip() for t in ([el.text or ""] + [p.tail or "" for p in parts]) if t.strip())
        if loose and not result:
            result["text"] = loose
    else:
        value = text(el)
        if value:
            result["text"] = value
    if not result:
        return None
    uses = (attr(el, "use") or "").split()
    for use in uses:
        mapped = value_map("name_use").get(use)
        if mapped:
            result["use"] = mapped
            break
    for use in uses:
        representation = value_map("name_representation").get(use)
        if representation:
            result["extension"] = [{"url": REPRESENTATION, "valueCode": representation}]
            break
    return result


def names(els: list[Element]) -> list[dict[str, Any]]:
    return [n for n in (human_name(el) for el in els) if n]


def address(el: Element) -> dict[str, Any] | None:
    if null(el) and not elements(el):
        return None
    result: dict[str, Any] = {}
    lines: list[str] = []
    for part in elements(el):
        value = text(part)
        if not value:
            continue
        kind = local(part)
        if kind in ("streetAddressLine", "houseNumber", "streetName", "houserNumber", "township", "additionalLocator",
                    "unitID", "deliveryAddressLine"):
            lines.append(value)
        elif kind == "city":
            result["city"] = value
        elif kind == "county":
            result["district"] = value
        elif kind == "state":
            result["state"] = value
        elif kind == "postalCode":
            result["postalCode"] = value
        elif kind == "country":
            result["country"] = value
    if lines:
        result["line"] = lines
    if not elements(el) and text(el):
        result["text"] = text(el)
    if not result:
        return None
    for use in (attr(el, "use") or "").split():
        mapped = value_map("address_use").get(use)
        if mapped:
            result["use"] = mapped
            break
    return result


def addresses(els: list[Element]) -> list[dict[str, Any]]:
    return [a for a in (address(el) for el in els) if a]


def telecom(el: Element) -> dict[str, Any] | None:
    value = attr(el, "value")
    if not value or (null(el) and not value):
        return None
    scheme, sep, rest = value.partition(":")
    system = value_map("telecom_scheme").get(scheme.lower()) if sep else None
    if system is None:
        system, rest = "other", value
    elif system in ("phone", "fax", "email"):
        rest = rest.strip().lstrip("/") if system == "email" else rest.strip()
    else:
        rest = value
    if not rest:
        return None
    result: dict[str, Any] = {"system": system, "value": rest}
    for use in (attr(el, "use") or "").split():
        mapped = value_map("telecom_use").get(use)
        if mapped:
            result["use"] = mapped
            break
    return result


def telecoms(els: list[Element]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for el in els:
        found = telecom(el)
        if found and found not in result:
            result.append(found)
    return result


# --- codes ----------------------------------------------------------------------------------


def system_for_code(code_system: str | None) -> str | None:
    if not code_system:
        return None
    known = code_systems().get(code_system)
    if known:
        return known
    if OID.match(code_system):
        return f"urn:oid:{code_system}"
    if UUID.match(code_system):
        return f"urn:uuid:{code_system.lower()}"
    return None


def original_text(ctx: Context, el: Element | None) -> str | None:
    """originalText, following its reference into the narrative."""
    if el is None:
        return None
    reference = child(el, "reference")
    if reference is not None:
        target = (attr(reference, "value") or "").lstrip("#")
        if target in ctx.narrative:
            return ctx.narrative[target]
    return text(el)


def _coding(ctx: Context, el: Element) -> dict[str, Any] | None:
    code = attr(el, "code")
    if not code or (el.get("nullFlavor") is not None and not code):
        return None
    result: dict[str, Any] = {}
    system = system_for_code(attr(el, "codeSystem"))
    if system:
        result["system"] = system
    version = attr(el, "codeSystemVersion")
    if version:
        result["version"] = version
    result["code"] = code
    display = attr(el, "displayName")
    if display:
        result["display"] = display
    return result


def _accepted(matches: tuple[Any, ...]) -> list[Any]:
    """The translations that may sit beside the original: equal/equivalent ones, and wider
    ones (a broader class that still holds); narrower ones would claim more than is known.
    Several equivalent targets in one system are an ambiguity: none of them is taken."""
    wanted = [m for m in matches if m.equivalence in ("equal", "equivalent", "wider", "subsumes")]
    by_system: dict[str | None, list[Any]] = {}
    for match in wanted:
        if match.equivalence in ("equal", "equivalent"):
            by_system.setdefault(match.system, []).append(match)
    ambiguous = {system for system, found in by_system.items() if len(found) > 1}
    return [m for m in wanted if m.system not in ambiguous]


def _shared_codings(ctx: Context, coding: dict[str, Any], el: Element) -> list[dict[str, Any]]:
    if ctx.terms is None or "system" not in coding:
        return []
    matches = ctx.terms.translate(coding["system"], coding["code"], None, ctx.language)
    accepted = _accepted(matches)
    if len(accepted) < len([m for m in matches if m.equivalence in ("equal", "equivalent")]):
        ctx.warn(f"{coding['system']}#{coding['code']} maps to several equivalent codes; none was added", el)
    result = []
    for match in accepted:
        shared: dict[str, Any] = {"system": match.system, "code": match.code}
        if match.display:
            shared["display"] = match.display
        result.append(shared)
    return result


def codeable(ctx: Context, el: Element | None) -> dict[str, Any] | None:
    """CD/CE/CV → CodeableConcept: the code and its translations as sent, the shared codings
    terminology maps them to, and originalText (or the display) as text."""
    if el is None:
        return None
    codings: list[dict[str, Any]] = []
    sources = [el, *children(el, "translation")]
    for source in sources:
        coding = _coding(ctx, source)
        if coding and coding not in codings:
            if "display" not in coding and "system" in coding and ctx.terms is not None:
                display = ctx.terms.display(coding["system"], coding["code"], ctx.language)
                if display:
                    coding["display"] = display
            codings.append(coding)
    for coding in list(codings):
        for shared in _shared_codings(ctx, coding, el):
            if not any(c.get("system") == shared["system"] and c.get("code") == shared["code"] for c in codings):
                codings.append(shared)
    result: dict[str, Any] = {}
    if codings:
        result["coding"] = codings
    label = original_text(ctx, child(el, "originalText"))
    if not label and el.get("nullFlavor") is None and not codings and xsi_type(el) in ("ST", "ED") and text(el):
        label = text(el)
    if label:
        result["text"] = label
    return result or None


def coding_of(ctx: Context, el: Element | None) -> dict[str, Any] | None:
    concept = codeable(ctx, el)
    return concept["coding"][0] if concept and concept.get("coding") else None


# --- quantities and values ---------------------------------------------------------------------


def number(ctx: Context, value: str, el: Element) -> int | float | None:
    """A decimal as JSON number; a value that is not a number is left out with a warning."""
    try:
        parsed = Decimal(value.strip())
    except (InvalidOperation, ValueError):
        parsed = None
    if parsed is None or not parsed.is_finite() or abs(parsed.adjusted()) > 100:
        ctx.warn(f"'{value}' is not a number: left out", el)
        return None
    if parsed == parsed.to_integral_value() and "." not in value and "e" not in value.lower():
        return int(parsed)
    return float(parsed)


def quantity(ctx: Context, el: Element | None, *, value_name: str = "value", unit: str | None = None) -> dict[str, Any] | None:
    """PQ → Quantity: the unit as sent, UCUM code and system when it is UCUM or terminology
    knows the spelling (毫摩尔/升 → mmol/L)."""
    if el is None or null(el):
        return None
    raw = attr(el, value_name)
    if raw is None:
        return None
    amount = number(ctx, raw, el)
    if amount is None:
        return None
    result: dict[str, Any] = {"value": amount}
    unit = unit if unit is not None else attr(el, "unit")
    if unit and unit != "1":
        result["unit"] = unit
        code = None
        if ctx.terms is not None:
            found = ctx.terms.normalise_unit(unit)
            code = found.code if found is not None else None
        if code is None and UNIT_LIKE_UCUM.match(unit):
            code = unit  # CDA PQ units are UCUM by definition
        if code:
            result["system"] = UCUM
            result["code"] = code
    elif unit == "1":
        result["system"], result["code"] = UCUM, "1"
    return result


def value_of(ctx: Context, el: Element | None) -> dict[str, Any]:
    """An observation's value as ``value[x]`` (empty when there is none or it is null)."""
    if el is None:
        return {}
    kind = xsi_type(el) or ""
    if kind in ("PQ", "MO"):
        found = quantity(ctx, el)
        return {"valueQuantity": found} if found else {}
    if kind in ("REAL", "INT", "REAL.NONNEG", "INT.POS", "INT.NONNEG"):
        raw = attr(el, "value")
        if raw is None or null(el):
            return {}
        parsed = number(ctx, raw, el)
        if parsed is None:
            return {}
        if kind.startswith("INT") and isinstance(parsed, int):
            return {"valueInteger": parsed}
        return {"valueQuantity": {"value": parsed}}
    if kind in ("CD", "CE", "CV", "CO", "CS"):
        concept = codeable(ctx, el)
        return {"valueCodeableConcept": concept} if concept else {}
    if kind == "BL":
        raw = attr(el, "value")
        return {"valueBoolean": raw == "true"} if raw in ("true", "false") else {}
    if kind == "TS":
        found = date_time(ctx, el)
        return {"valueDateTime": found} if found else {}
    if kind == "IVL_PQ":
        low, high = quantity(ctx, child(el, "low")), quantity(ctx, child(el, "high"))
        span = {k: v for k, v in (("low", low), ("high", high)) if v}
        return {"valueRange": span} if span else {}
    if kind == "IVL_TS":
        found = period(ctx, el)
        return {"valuePeriod": found} if found else {}
    if kind in ("RTO_PQ_PQ", "RTO", "RTO_INT_INT"):
        numerator = quantity(ctx, child(el, "numerator"))
        denominator = quantity(ctx, child(el, "denominator"))
        ratio = {k: v for k, v in (("numerator", numerator), ("denominator", denominator)) if v}
        return {"valueRatio": ratio} if ratio else {}
    if kind in ("ST", "ED", "SC", "") or not kind:
        label = text(el)
        if not label:
            reference = child(el, "reference")
            if reference is not None:
                label = ctx.narrative.get((attr(reference, "value") or "").lstrip("#"))
        if not label and kind == "" and attr(el, "code"):
            concept = codeable(ctx, el)
            return {"valueCodeableConcept": concept} if concept else {}
        return {"valueString": label} if label else {}
    ctx.warn(f"a value of type {kind} is not converted", el)
    return {}


def attachment_data(el: Element) -> bytes:
    """The content of an ED: base64-decoded when representation is B64, else its text."""
    raw = "".join(t for t in el.itertext() if isinstance(t, str))
    if (el.get("representation") or "").upper() == "B64":
        try:
            return base64.b64decode("".join(raw.split()), validate=True)
        except (binascii.Error, ValueError):
            raise fail("the base64 content cannot be decoded", el) from None
    return raw.strip().encode("utf-8")
