"""The institutions registry: the hospitals and clinics taking part, each an Organization (and
its sites Locations) with its jurisdiction and its designations (Medicines and Medical Devices
Connect batch, Elderly Health Care Voucher service point) as dated, sourced extensions.

The list is data (``institutions.json`` beside this module, or an operator's file), checked
whole before anything is stored; facts and sources: ``../shared/reference/institutions.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from fhir_exchange.errors import InvalidRequest, Issue
from fhir_exchange.service import FhirService
from terminology.languages import ZH_HANS, ZH_HANT, to_simplified, to_traditional_hk

DEFAULT_FILE = Path(__file__).with_name("institutions.json")
INSTITUTION_SYSTEM = "http://baylink.example.org/fhir/sid/institution"
JURISDICTION_URL = "http://baylink.example.org/fhir/StructureDefinition/institution-jurisdiction"
DESIGNATION_URL = "http://baylink.example.org/fhir/StructureDefinition/institution-designation"
TRANSLATION_URL = "http://hl7.org/fhir/StructureDefinition/translation"
# The nine mainland Bay Area cities and the two SARs (institutions.md, "Cities").
MAINLAND_CITIES = ("Guangzhou", "Shenzhen", "Zhuhai", "Foshan", "Huizhou", "Dongguan", "Zhongshan", "Jiangmen", "Zhaoqing")
JURISDICTIONS = ("HK", "MO", *(f"CN-{city}" for city in MAINLAND_CITIES))
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_PARTIAL_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


SECTOR_SYSTEM = "http://baylink.example.org/fhir/CodeSystem/institution-sector"


def country_of(jurisdiction: str) -> str:
    return jurisdiction.split("-")[0]


@dataclass(frozen=True, slots=True)
class Designation:
    programme: str
    start: str
    end: str | None = None
    batch: str | None = None
    source: str | None = None
    note: str | None = None
    excludes: tuple[str, ...] = ()
    services: tuple[str, ...] = ()

    def active_on(self, day: date) -> bool:
        """Whether the designation holds on ``day``; a partial start date counts from the
        first day of its year or month (the earliest it can mean)."""
        start = _date_floor(self.start)
        end = _date_ceiling(self.end) if self.end else None
        return start <= day and (end is None or day <= end)


@dataclass(slots=True)
class Institution:
    id: str
    name: str
    jurisdiction: str
    designations: list[Designation] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    sector: str | None = None  # e.g. "HA" (Hong Kong's Hospital Authority), "public", "private"

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "names": self.names,
            "jurisdiction": self.jurisdiction,
            "designations": [
                {k: v for k, v in (("programme", d.programme), ("batch", d.batch), ("from", d.start), ("until", d.end),
                                   ("excludes", list(d.excludes) or None), ("services", list(d.services) or None)) if v}
                for d in self.designations
            ],
            "locations": self.locations,
            **({"sector": self.sector} if self.sector else {}),
        }


def _date_floor(text: str) -> date:
    parts = [int(p) for p in text.split("-")]
    return date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)


def _date_ceiling(text: str) -> date:
    parts = [int(p) for p in text.split("-")]
    if len(parts) == 3:
        return date(*parts)
    if len(parts) == 2:
        following = date(parts[0] + (parts[1] == 12), parts[1] % 12 + 1, 1)
        return date.fromordinal(following.toordinal() - 1)
    return date(parts[0], 12, 31)


def _names(names: dict[str, str]) -> dict[str, str]:
    """The names with the missing Chinese script derived (OpenCC, Hong Kong variant)."""
    names = dict(names)
    if names.get(ZH_HANS) and not names.get(ZH_HANT):
        names[ZH_HANT] = to_traditional_hk(names[ZH_HANS])
    elif names.get(ZH_HANT) and not names.get(ZH_HANS):
        names[ZH_HANS] = to_simplified(names[ZH_HANT])
    return names


def read_registry(path: Path = DEFAULT_FILE) -> list[dict[str, Any]]:
    """The Organization and Location resources the file describes, in load order; every fault
    is collected first and raised together (400 naming each), so a bad file stores nothing."""
    try:
        document = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"{path.name} is not valid JSON: {exc}") from None
    sources: dict[str, str] = document.get("sources") or {}
    programmes: dict[str, str] = document.get("programmes") or {}
    problems: list[str] = []
    seen: set[str] = set()
    resources: list[dict[str, Any]] = []
    for index, entry in enumerate(document.get("institutions") or []):
        where = f"institutions[{index}]"
        org_id = entry.get("id", "")
        if not _ID.match(org_id or ""):
            problems.append(f"{where}: id '{org_id}' is not a valid FHIR id")
            continue
        where = f"institution '{org_id}'"
        if org_id in seen:
            problems.append(f"{where}: the id appears more than once")
        seen.add(org_id)
        jurisdiction = entry.get("jurisdiction")
        if jurisdiction not in JURISDICTIONS:
            problems.append(f"{where}: jurisdiction '{jurisdiction}' is not one of {', '.join(JURISDICTIONS)}")
            continue
        names = entry.get("name") or {}
        if not names.get("en"):
            problems.append(f"{where}: needs an English name (name.en)")
            continue
        if entry.get("source") and entry["source"] not in sources:
            problems.append(f"{where}: source '{entry['source']}' is not listed under sources")
        designations = _designations(entry.get("designations") or [], where, programmes, sources, problems)
        organization = _organization(org_id, _names(names), jurisdiction, designations, entry.get("sector"))
        resources.append(organization)
        for loc_index, location in enumerate(entry.get("locations") or []):
            loc_where = f"{where} locations[{loc_index}]"
            loc_id = location.get("id", "")
            if not _ID.match(loc_id or "") or loc_id in seen:
                problems.append(f"{loc_where}: id '{loc_id}' is missing, invalid or not unique")
                continue
            seen.add(loc_id)
            loc_names = _names(location.get("name") or {})
            if not loc_names.get("en"):
                problems.append(f"{loc_where}: needs an English name (name.en)")
                continue
            loc_designations = _designations(location.get("designations") or [], loc_where, programmes, sources, problems)
            resources.append(_location(loc_id, org_id, loc_names, jurisdiction, loc_designations))
    if problems:
        raise InvalidRequest(
            f"{path.name} was not loaded: {len(problems)} problem(s)",
            issues=[Issue("error", "invalid", p) for p in problems],
        )
    return resources


def _designations(items: list[dict[str, Any]], where: str, programmes: dict[str, str], sources: dict[str, str],
                  problems: list[str]) -> list[Designation]:
    result = []
    for index, item in enumerate(items):
        here = f"{where} designations[{index}]"
        programme = item.get("programme")
        if programme not in programmes:
            problems.append(f"{here}: programme '{programme}' is not one of {', '.join(programmes)}")
            continue
        start, end = item.get("from"), item.get("until")
        if not start or not _PARTIAL_DATE.match(start) or (end and not _PARTIAL_DATE.match(end)):
            problems.append(f"{here}: 'from' (and 'until') must be dates written YYYY, YYYY-MM or YYYY-MM-DD")
            continue
        try:
            _date_floor(start)
            if end:
                _date_ceiling(end)
        except ValueError as exc:
            problems.append(f"{here}: {exc}")
            continue
        if end and _date_ceiling(end) < _date_floor(start):
            problems.append(f"{here}: ends ({end}) before it starts ({start})")
        if item.get("source") not in sources:
            problems.append(f"{here}: every designation needs a source listed under sources (got '{item.get('source')}')")
        result.append(Designation(programme, start, end, item.get("batch"), sources.get(item.get("source") or ""),
                                  item.get("note"), tuple(item.get("excludes") or ()), tuple(item.get("services") or ())))
    return result


def _translations(names: dict[str, str]) -> dict[str, Any] | None:
    others = [(lang, value) for lang, value in names.items() if lang != "en"]
    if not others:
        return None
    return {"extension": [
        {"url": TRANSLATION_URL, "extension": [{"url": "lang", "valueCode": lang}, {"url": "content", "valueString": value}]}
        for lang, value in others
    ]}


def _designation_extension(designation: Designation) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"url": "programme", "valueCode": designation.programme}]
    if designation.batch:
        parts.append({"url": "batch", "valueString": designation.batch})
    period = {"start": designation.start, **({"end": designation.end} if designation.end else {})}
    parts.append({"url": "period", "valuePeriod": period})
    parts += [{"url": "excludes", "valueCode": code} for code in designation.excludes]
    parts += [{"url": "service", "valueCode": code} for code in designation.services]
    if designation.source:
        parts.append({"url": "source", "valueString": designation.source})
    if designation.note:
        parts.append({"url": "note", "valueString": designation.note})
    return {"url": DESIGNATION_URL, "extension": parts}


def _address(jurisdiction: str) -> dict[str, Any]:
    country = country_of(jurisdiction)
    address: dict[str, Any] = {"country": country}
    if country == "CN":
        address.update(city=jurisdiction.split("-", 1)[1], state="Guangdong")
    return address


def _organization(org_id: str, names: dict[str, str], jurisdiction: str, designations: list[Designation],
                  sector: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": org_id,
        "extension": [{"url": JURISDICTION_URL, "valueCode": jurisdiction}]
        + [_designation_extension(d) for d in designations],
        "identifier": [{"system": INSTITUTION_SYSTEM, "value": org_id}],
        "active": True,
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov",
                              "display": "Healthcare Provider"}]}]
        + ([{"coding": [{"system": SECTOR_SYSTEM, "code": sector}]}] if sector else []),
        "name": names["en"],
        "alias": [v for k, v in names.items() if k != "en"] or None,
        "address": [_address(jurisdiction)],
    }
    translations = _translations(names)
    if translations:
        resource["_name"] = translations
    return {k: v for k, v in resource.items() if v is not None}


def _location(loc_id: str, org_id: str, names: dict[str, str], jurisdiction: str,
              designations: list[Designation]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Location",
        "id": loc_id,
        "extension": [{"url": JURISDICTION_URL, "valueCode": jurisdiction}]
        + [_designation_extension(d) for d in designations],
        "identifier": [{"system": INSTITUTION_SYSTEM, "value": loc_id}],
        "status": "active",
        "name": names["en"],
        "alias": [v for k, v in names.items() if k != "en"] or None,
        "address": _address(jurisdiction),
        "managingOrganization": {"reference": f"Organization/{org_id}"},
    }
    translations = _translations(names)
    if translations:
        resource["_name"] = translations
    return {k: v for k, v in resource.items() if v is not None}


def institution_from_resource(resource: dict[str, Any]) -> Institution:
    """What the registry says of an Organization (or Location) resource it stored."""
    jurisdiction = next((e.get("valueCode") for e in resource.get("extension") or [] if e.get("url") == JURISDICTION_URL), "")
    designations = []
    for extension in resource.get("extension") or []:
        if extension.get("url") != DESIGNATION_URL:
            continue
        parts = extension.get("extension") or []

        def one(name: str, kind: str, parts: list[dict[str, Any]] = parts) -> Any:
            return next((p.get(kind) for p in parts if p.get("url") == name), None)

        period = one("period", "valuePeriod") or {}
        designations.append(Designation(
            programme=one("programme", "valueCode"), start=period.get("start", ""), end=period.get("end"),
            batch=one("batch", "valueString"), source=one("source", "valueString"), note=one("note", "valueString"),
            excludes=tuple(p["valueCode"] for p in parts if p.get("url") == "excludes"),
            services=tuple(p["valueCode"] for p in parts if p.get("url") == "service"),
        ))
    sector = next((c.get("code") for t in resource.get("type") or [] for c in t.get("coding") or []
                   if c.get("system") == SECTOR_SYSTEM), None)
    names = {"en": resource.get("name", "")}
    for translation in (resource.get("_name") or {}).get("extension") or []:
        if translation.get("url") == TRANSLATION_URL:
            parts = {p.get("url"): p for p in translation.get("extension") or []}
            if "lang" in parts and "content" in parts:
                names[parts["lang"]["valueCode"]] = parts["content"]["valueString"]
    return Institution(resource.get("id", ""), resource.get("name", ""), jurisdiction, designations, names=names,
                       sector=sector)


def load_registry(service: FhirService, path: Path = DEFAULT_FILE) -> tuple[int, int]:
    """Store the registry's resources in the caller's transaction; (written, unchanged)."""
    written = unchanged = 0
    for resource in read_registry(path):
        if service.put_if_changed(resource) is None:
            unchanged += 1
        else:
            written += 1
    return written, unchanged


def list_institutions(service: FhirService) -> list[Institution]:
    """Every registered institution (Organization with a registry identifier), by id, with
    the ids of its sites."""
    organizations = _all(service, "Organization")
    locations = _all(service, "Location")
    institutions = [institution_from_resource(r) for r in organizations]
    by_id = {i.id: i for i in institutions}
    for location in locations:
        owner = ((location.get("managingOrganization") or {}).get("reference") or "").removeprefix("Organization/")
        if owner in by_id:
            by_id[owner].locations.append(location["id"])
    return sorted(institutions, key=lambda i: i.id)


def _all(service: FhirService, resource_type: str) -> list[dict[str, Any]]:
    query = service.parser.parse(resource_type, [("identifier", f"{INSTITUTION_SYSTEM}|")])
    return [stored.content for stored in service.repo.load(service.repo.search_pks(query)) if stored.content]
