"""HL7 v2 data types as FHIR R4 data types: DTM/TS → dateTime, XPN → HumanName (with the
script of Chinese names), XAD → Address, XTN → ContactPoint, CX/EI → Identifier, CE/CWE →
CodeableConcept (the original coding kept, the shared codings the terminology maps it to
added, displays in three languages), NM + units → Quantity in UCUM.

A value that is not what its type says (a date that is not a date, a number that is not a
number) is left out with a warning, never guessed and never a failure: one bad field should not
lose a patient's admission. What must be there for the message to mean anything (MSH-9,
MSH-10, PID-3) is checked by the reader, which refuses the message naming the field.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fhir_exchange.convert.hl7v2.message import Rep, Segment
from fhir_exchange.convert.hl7v2.profiles import Profile
from fhir_exchange.convert.hl7v2.tables import COMMON

BASE_SYSTEM = "http://baylink.example.org/fhir/sid/hl7v2"
REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
LANGUAGES = ("en", "zh-Hant", "zh-Hans")
SHARED_EQUIVALENCE = ("equivalent", "equal", "wider", "subsumes", "relatedto")
OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$")
NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")
HAN = re.compile(r"[\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3038-\u303b\u3400-\u4dbf\u4e00-\u9fff"
                 r"\uf900-\ufaff\U00020000-\U0003134f]")
LATIN = re.compile(r"[A-Za-z]")


def _terminology() -> Any | None:
    from terminology import api

    return api.configured()


def fhir_number(text: str) -> int | float | None:
    text = text.strip()
    if not NUMBER.match(text):
        return None
    if "." in text:
        return float(text)
    return int(text)


MAX_INTEGER = 2_147_483_647  # FHIR integer, positiveInt, unsignedInt: 32 bits


def fhir_integer(text: str, minimum: int = 0) -> int | None:
    """A whole number FHIR's integer types can hold (32-bit), at least ``minimum``; else None."""
    number = fhir_number(text)
    return number if isinstance(number, int) and minimum <= number <= MAX_INTEGER else None


class Types:
    """Converts v2 values for one message: knows its profile (local code systems, identity
    documents), whose identifiers these are (the sender), and collects what it had to drop."""

    def __init__(self, profile: Profile, scope: str, timezone_offset: str | None) -> None:
        self.profile = profile
        self.scope = scope  # the sending institution, else the sending facility: names local identifier systems
        self.default_offset = timezone_offset or profile.timezone
        self.offset_from_message = timezone_offset is not None
        self.warnings: list[str] = []
        self.terms = _terminology()

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    # --- identifier systems --------------------------------------------------------------------

    def local_system(self, kind: str, authority: str = "") -> str:
        """The system of the sender's own identifiers of a kind (medical record numbers, visit
        numbers, order numbers …): one namespace per sender, so two hospitals' visit 1001 differ."""
        system = f"{BASE_SYSTEM}/{quote(self.scope, safe='')}/{kind}"
        return f"{system}/{quote(authority, safe='')}" if authority else system

    def hd_system(self, namespace: str, universal: str, universal_type: str, kind: str) -> str:
        """The system an HD (assigning authority) names: its OID, UUID or URI when it has one,
        a known authority (NPI …), else the sender's namespace for that authority."""
        universal, universal_type = universal.strip(), universal_type.strip().upper()
        if universal and OID.match(universal) and universal_type in ("ISO", "", "HL7"):
            return f"urn:oid:{universal}"
        if universal and UUID.match(universal) and universal_type in ("UUID", "GUID", ""):
            return f"urn:uuid:{universal.lower()}"
        if universal and universal_type in ("URI", "URL") and re.match(r"^[a-z][a-z0-9+.-]*:\S+$", universal):
            return universal
        known = COMMON["identifier_authorities"].get(namespace.strip().upper())
        if known:
            return known
        return self.local_system(kind, namespace.strip() or universal)

    # --- dates and times -----------------------------------------------------------------------

    def _parts(self, text: str, where: str) -> tuple[list[int], str | None, str | None] | None:
        text = text.strip()
        if not text:
            return None
        match = DTM.match(text)
        if not match:
            self.warn(f"{where}: '{text}' is not an HL7 date/time (YYYY[MM[DD[HH[MM[SS]]]]][+/-ZZZZ]); left out")
            return None
        groups = match.groups()
        numbers = [int(g) for g in groups[:6] if g is not None]
        fraction, offset = groups[6], groups[7]
        try:
            if len(numbers) >= 3:
                date(*numbers[:3])
            elif len(numbers) == 2 and not 1 <= numbers[1] <= 12:
                raise ValueError("month")
            if len(numbers) >= 4:
                hour, minute, second = [*numbers[3:], 0, 0][:3]
                if hour > 23 or minute > 59 or second > 59:
                    raise ValueError("time")
            if offset and (int(offset[1:3]) > 14 or int(offset[3:5]) > 59):
                raise ValueError("offset")
        except ValueError:
            self.warn(f"{where}: '{text}' is not a real date/time; left out")
            return None
        return numbers, fraction, offset

    def date_time(self, text: str, where: str) -> str | None:
        """A v2 DTM as a FHIR dateTime: the precision sent; a time gets seconds and an offset
        (the message's, else the profile's local time, +08:00 in the Greater Bay Area)."""
        parsed = self._parts(text, where)
        if parsed is None:
            return None
        numbers, fraction, offset = parsed
        result = f"{numbers[0]:04d}"
        if len(numbers) >= 2:
            result += f"-{numbers[1]:02d}"
        if len(numbers) >= 3:
            result += f"-{numbers[2]:02d}"
        if len(numbers) >= 4:
            hour, minute, second = [*numbers[3:], 0, 0][:3]
            result += f"T{hour:02d}:{minute:02d}:{second:02d}" + (fraction or "")
            if offset is None:
                offset = self.default_offset.replace(":", "")
                if not self.offset_from_message:
                    self.warn(f"times without a UTC offset are read as local time {self.default_offset}")
            result += f"{offset[:3]}:{offset[3:]}"
        return result

    def date(self, text: str, where: str) -> str | None:
        value = self.date_time(text, where)
        return value[:10] if value else None

    def instant(self, text: str, where: str) -> str | None:
        value = self.date_time(text, where)
        return value if value and "T" in value else None

    def moment(self, text: str, where: str) -> datetime | None:
        value = self.instant(text, where)
        return datetime.fromisoformat(value) if value else None

    @staticmethod
    def plus_minutes(value: str, minutes: float) -> str | None:
        try:
            moment = datetime.fromisoformat(value) + timedelta(minutes=minutes)
        except OverflowError:
            return None
        offset = moment.utcoffset() or timedelta(0)
        sign = "-" if offset < timedelta(0) else "+"
        total = abs(int(offset.total_seconds())) // 60
        return moment.replace(tzinfo=None).isoformat(timespec="seconds") + f"{sign}{total // 60:02d}:{total % 60:02d}"

    @staticmethod
    def utc(value: datetime) -> str:
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    # --- codes -----------------------------------------------------------------------------------

    def coding(self, code: str, display: str, system_name: str, context: str | None = None,
               table: str | None = None) -> dict[str, Any] | None:
        code, display = code.strip(), display.strip()
        if not code:
            return None
        if table and not system_name.strip():
            system_name = f"HL7{table}"
        system = self.profile.coding_system(system_name, context)
        if system is None:
            system = self.local_system("code", system_name.strip() or "unnamed")
        coding: dict[str, Any] = {"system": system, "code": code}
        if display:
            coding["display"] = display
        return coding

    def codeable(self, rep: Rep, context: str | None = None, *, text: str = "", table: str | None = None
                 ) -> dict[str, Any] | None:
        """CE/CWE/CNE: the primary and alternate codings, the original text (CWE-9, else the
        first display), and the shared codings the terminology maps each to. A code sent with
        no coding system is read in the field's HL7 table (``table``) when it has one, else in
        the flavour's local table for the ``context``."""
        if not rep:
            return {"text": text} if text.strip() else None
        codings = [c for c in (self.coding(rep.c(1), rep.c(2), rep.c(3), context, table),
                               self.coding(rep.c(4), rep.c(5), rep.c(6), context, table)) if c]
        original = rep.c(9) or rep.c(2) or rep.c(5) or text.strip()
        if not codings and not original:
            original = rep.c(1)
        concept: dict[str, Any] = {}
        if codings:
            concept["coding"] = self.enrich(codings)
        if original:
            concept["text"] = original
        return concept or None

    def simple_code(self, value: str, table: str, *, system_table: str | None = None, display: str = "") -> dict[str, Any] | None:
        """A code from an HL7 table (an ID/IS field) as a CodeableConcept in that v2 table."""
        value = value.strip()
        if not value:
            return None
        coding = {"system": f"http://terminology.hl7.org/CodeSystem/v2-{system_table or table}", "code": value}
        if display:
            coding["display"] = display
        return {"coding": [coding]}

    def enrich(self, codings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each coding with its displays in three languages, followed by the shared codings
        its system maps to (marked ``userSelected: false``: BayLink's translation, not the sender's)."""
        terms = self.terms
        if terms is None:
            return codings
        result: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for coding in codings:
            additions = []
            target = COMMON["shared_targets"].get(coding["system"])
            if target:
                for match in terms.translate(coding["system"], coding["code"], target):
                    if match.code and match.equivalence in SHARED_EQUIVALENCE:
                        shared = {"system": match.system or target, "code": match.code}
                        if match.display:
                            shared["display"] = match.display
                        shared["userSelected"] = False
                        additions.append(shared)
            for item in (coding, *additions):
                key = (item["system"], item["code"])
                if key in seen:
                    continue
                seen.add(key)
                result.append(self._displays(item, terms))
        return result

    @staticmethod
    def _displays(coding: dict[str, Any], terms: Any) -> dict[str, Any]:
        display = coding.get("display") or terms.display(coding["system"], coding["code"])
        if not display:
            return coding
        enriched = {**coding, "display": display}
        translations = []
        for language in LANGUAGES:
            words = terms.display(coding["system"], coding["code"], language)
            if words and words != display:
                translations.append({"url": TRANSLATION, "extension": [{"url": "lang", "valueCode": language},
                                                                       {"url": "content", "valueString": words}]})
        if translations:
            enriched["_display"] = {"extension": translations}
        return enriched

    def unit(self, rep: Rep) -> dict[str, Any]:
        """OBX-6 (CE: code^text^system) as the unit part of a Quantity: UCUM when the sender
        says so or the terminology recognises the spelling; the spelling as sent otherwise."""
        code, text, system = rep.c(1), rep.c(2), rep.c(3).upper()
        if not (code or text):
            return {}
        if system == "UCUM" and code:
            return {"unit": text or code, "system": "http://unitsofmeasure.org", "code": code}
        if self.terms is not None:
            for candidate in dict.fromkeys((code, text)):
                if candidate:
                    found = self.terms.normalise_unit(candidate)
                    if found is not None:
                        return {"unit": code or text, "system": found.system, "code": found.code}
        # a unit coded in another system (e.g. SNOMED CT 385055001 "Tablet") is shown by its words
        return {"unit": text or code if system else code or text}

    # --- identifiers -----------------------------------------------------------------------------

    def identifier_type(self, code: str) -> dict[str, Any] | None:
        code = code.strip()
        if not code:
            return None
        code = COMMON["identifier_type_aliases"].get(code.upper(), code)
        return {"coding": [{"system": V2_0203, "code": code}]}

    def cx(self, rep: Rep, kind: str) -> dict[str, Any] | None:
        """A CX as an Identifier of the sender (not an identity document: see ``Patients``)."""
        value = rep.c(1)
        if not value:
            return None
        identifier: dict[str, Any] = {"system": self.hd_system(rep.c(4, 1), rep.c(4, 2), rep.c(4, 3), kind), "value": value}
        type_code = self.identifier_type(rep.c(5))
        if type_code:
            identifier["type"] = type_code
        period = self.period(rep.c(7), rep.c(8), "CX-7/8")
        if period:
            identifier["period"] = period
        return identifier

    def ei(self, rep: Rep, kind: str, type_code: str | None = None) -> dict[str, Any] | None:
        value = rep.c(1)
        if not value:
            return None
        identifier: dict[str, Any] = {"system": self.hd_system(rep.c(2), rep.c(3), rep.c(4), kind), "value": value}
        if type_code:
            identifier["type"] = {"coding": [{"system": V2_0203, "code": type_code}]}
        return identifier

    def period(self, start: str, end: str, where: str) -> dict[str, Any] | None:
        period = {}
        begins = self.date_time(start, where) if start else None
        ends = self.date_time(end, where) if end else None
        if begins:
            period["start"] = begins
        if ends:
            period["end"] = ends
        if begins and ends and begins > ends and len(begins) == len(ends):
            self.warn(f"{where}: the period ends before it starts; its end is left out")
            period.pop("end")
        return period or None

    # --- people, places, contacts ----------------------------------------------------------------

    def human_name(self, family: str, given: list[str], prefix: str, suffix: list[str], use_code: str,
                   representation: str, where: str) -> dict[str, Any] | None:
        given = [g for g in given if g]
        if not family and not given:
            return None
        name: dict[str, Any] = {}
        script = COMMON["name_representation"].get(representation.strip().upper())
        written = family + "".join(given)
        if script is None and HAN.search(written):
            script = "IDE"
        elif script is None and LATIN.search(written):
            script = "ABC"
        if script:
            name["extension"] = [{"url": REPRESENTATION, "valueCode": script}]
        use = COMMON["name_use"].get(use_code.strip().upper())
        if use:
            name["use"] = use
        if script == "IDE":
            # a Chinese name is written family name first, without spaces (陳大文)
            name["text"] = family + "".join(given)
        if family:
            name["family"] = family
        if given:
            name["given"] = given
        if prefix:
            name["prefix"] = [prefix]
        suffix = [s for s in suffix if s]
        if suffix:
            name["suffix"] = suffix
        return name

    def xpn(self, rep: Rep, where: str) -> dict[str, Any] | None:
        """XPN: family^given^further given^suffix^prefix^degree^type (0200)^representation (4000)^…^validity^…"""
        name = self.human_name(rep.c(1), [rep.c(2), *rep.c(3).split()] if rep.c(3) else [rep.c(2)], rep.c(5),
                               [rep.c(4), rep.c(6), rep.c(14)], rep.c(7), rep.c(8), where)
        if name is not None:
            period = self.period(rep.c(12) or rep.c(10, 1), rep.c(13) or rep.c(10, 2), f"{where} validity")
            if period:
                name["period"] = period
        return name

    def xcn_name(self, rep: Rep, where: str) -> dict[str, Any] | None:
        """The name in an XCN (id^family^given^further^suffix^prefix^degree^…^type (10)^…^representation (15))."""
        return self.human_name(rep.c(2), [rep.c(3), *rep.c(4).split()] if rep.c(4) else [rep.c(3)], rep.c(6),
                               [rep.c(5), rep.c(7)], rep.c(10), rep.c(15), where)

    def address(self, rep: Rep) -> dict[str, Any] | None:
        """XAD: street^other^city^state^postal code^country^type (0190)^…"""
        lines = [line for line in (rep.c(1, 1), rep.c(2)) if line]
        address: dict[str, Any] = {}
        code = rep.c(7).upper()
        use = COMMON["address_use"].get(code)
        kind = COMMON["address_type"].get(code)
        if use:
            address["use"] = use
        if kind:
            address["type"] = kind
        if lines:
            address["line"] = lines
        for key, value in (("city", rep.c(3)), ("state", rep.c(4)), ("postalCode", rep.c(5)), ("country", rep.c(6)),
                           ("district", rep.c(9))):
            if value:
                address[key] = value
        if not (set(address) - {"use", "type"}):
            return None
        period = self.period(rep.c(13) or rep.c(12, 1), rep.c(14) or rep.c(12, 2), "XAD validity")
        if period:
            address["period"] = period
        return address

    def telecom(self, rep: Rep) -> dict[str, Any] | None:
        """XTN: [number]^use (0201)^equipment (0202)^email^country^area^local^extension^any text^…^unformatted (12)."""
        equipment = rep.c(3)
        system = COMMON["telecom_system"].get(equipment) or COMMON["telecom_system"].get(equipment.upper())
        value = ""
        if equipment.upper() in ("INTERNET", "X.400") or (rep.c(4) and not rep.c(7)):
            value = rep.c(4)
            system = "email" if value and "@" in value else system or "other"
        if not value:
            local = rep.c(7)
            if local:
                value = " ".join(p for p in (f"+{rep.c(5).lstrip('+')}" if rep.c(5) else "", rep.c(6), local) if p)
                if rep.c(8):
                    value += f" ext. {rep.c(8)}"
            else:
                value = rep.c(12) or rep.c(1)
        if not value:
            return None
        point: dict[str, Any] = {"system": system or "phone", "value": value}
        use = COMMON["telecom_use_by_equipment"].get(equipment.upper()) or COMMON["telecom_use"].get(rep.c(2).upper())
        if use:
            point["use"] = use
        return point

    def location_text(self, rep: Rep) -> str:
        """A PL (point of care^room^bed^facility^status^type^building^floor^description) as words."""
        parts = [rep.c(9)] if rep.c(9) else []
        for number, label in ((4, ""), (7, "building "), (8, "floor "), (1, ""), (2, "room "), (3, "bed ")):
            value = rep.c(number, 1)
            if value:
                parts.append(f"{label}{value}")
        return ", ".join(dict.fromkeys(parts))

    def quantity(self, value: str, unit: Rep) -> dict[str, Any] | None:
        number = fhir_number(value)
        if number is None:
            return None
        return {"value": number, **self.unit(unit)}

    def narrative_text(self, segment: Segment, number: int) -> str:
        """A text field (ST/TX/FT), its repetitions as lines."""
        return "\n".join(rep.text() for rep in segment.reps(number)).strip()
