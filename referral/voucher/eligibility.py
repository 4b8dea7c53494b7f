"""Who may use vouchers where: the scheme's eligibility rules, answered in words.

A service is covered when every check passes:

- ``identity``: the Patient holds a valid Hong Kong Identity Card number (check character
  verified, ``identifier.period`` not ended by the service date) or a Certificate of
  Exemption. A valid HKID stands for Hong Kong residence (the scheme's own test is the card).
- ``age``: the person is aged 65 or above in the calendar year of the service: born on or
  before 31 December of (service year − 65). The minimum age is rule data (70 before 1 Jul 2017).
- ``service-point``: the service point (the calling institution's Organization, or one of its
  Locations when the service was given there) holds an ``ehcv`` designation in the
  institutions registry that is active on the service date. A Location is a service point
  only by a designation of its own, with its own dates.
- ``service-type``: that designation takes the service type: not one it ``excludes``
  (HKU-Shenzhen Hospital: inpatient, prepaid, day surgery) and, if it lists ``services``, one
  of those (a code or its category, e.g. ``dental``).

``decide`` is pure (resources in, an answer out); ``EligibilityService`` reads what it needs
in the caller's transaction: the Patient through the repository, so the token's scopes
(``Patient.r``) and the release gate apply (an institution learns eligibility only for a
patient whose record it may see), and the registry's Organization/Location.

The Certificate of Exemption is not among the identity documents ``fhir_exchange`` knows (it
publishes no NamingSystem for it and adds none here): BayLink reads it under the system
``COE_SYSTEM`` defined in this module, checks only that it is letters and digits, and, since
``fhir_exchange`` does not know it, it is not encrypted at rest as HKIDs are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fhir_exchange import crypto
from fhir_exchange.errors import Forbidden, InvalidRequest, NotFound
from fhir_exchange.identity.documents import InvalidIdentifier, document_for, validate_hkid
from fhir_exchange.institutions.registry import Designation, institution_from_resource
from fhir_exchange.service import FhirService
from referral.voucher.rules import Rules

PROGRAMME = "ehcv"
COE_SYSTEM = "http://baylink.example.org/fhir/sid/hk-certificate-of-exemption"
_COE = re.compile(r"^[A-Z0-9]{4,20}$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True, slots=True)
class IdentityDocument:
    kind: str  # hkid | coe
    system: str  # the preferred system, so that aliases key the same account
    value: str  # canonical

    def person_key(self) -> str:
        """The account key: the keyed blind index of the document (never the number)."""
        return crypto.vault().blind(self.system, self.value)


@dataclass(frozen=True, slots=True)
class ServicePoint:
    reference: str  # Organization/<id> or Location/<id>
    name: str
    designations: tuple[Designation, ...]  # the ehcv ones


@dataclass(frozen=True, slots=True)
class Check:
    rule: str  # identity | age | service-point | service-type
    passed: bool
    message: str
    rule_id: str | None = None


@dataclass(frozen=True)
class Eligibility:
    patient_id: str
    service_date: date
    service_type: str
    service_point: str
    checks: tuple[Check, ...]
    document: IdentityDocument | None = None
    birth_year: int | None = None
    minimum_age: int | None = None
    rule_ids: tuple[str, ...] = field(default=())

    @property
    def eligible(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def reasons(self) -> str:
        return "; ".join(c.message for c in self.failures)


def _period_open(identifier: dict[str, Any], day: date) -> bool:
    end = ((identifier.get("period") or {}).get("end") or "")[:10]
    return not end or len(end) < 10 or date.fromisoformat(end) >= day


def identity_document(patient: dict[str, Any], day: date) -> tuple[IdentityDocument | None, str]:
    """The HKID (preferred) or Certificate of Exemption the Patient holds on ``day``, or None
    and why not."""
    problems = []
    found: IdentityDocument | None = None
    for identifier in patient.get("identifier") or []:
        system, value = identifier.get("system"), identifier.get("value")
        if not isinstance(value, str):
            continue
        document = document_for(system)
        if document is not None and document.kind == "hkid":
            try:
                canonical = validate_hkid(value)
            except InvalidIdentifier as exc:
                problems.append(f"its HKID is not valid ({exc})")
                continue
            if not _period_open(identifier, day):
                problems.append(f"its HKID was valid only until {identifier['period']['end'][:10]}")
                continue
            return IdentityDocument("hkid", document.system, canonical), ""
        if system == COE_SYSTEM and found is None:
            text = value.strip().upper().replace(" ", "")
            if not _COE.match(text):
                problems.append("its Certificate of Exemption number is not 4 to 20 letters and digits")
            elif not _period_open(identifier, day):
                problems.append(f"its Certificate of Exemption was valid only until {identifier['period']['end'][:10]}")
            else:
                found = IdentityDocument("coe", COE_SYSTEM, text)
    if found is not None:
        return found, ""
    why = "; ".join(problems) or "it holds no Hong Kong Identity Card number nor Certificate of Exemption"
    return None, why


def decide(patient: dict[str, Any], point: ServicePoint | None, point_reference: str, service_type: str, day: date,
           rules: Rules) -> Eligibility:
    """Whether ``patient`` may use vouchers for ``service_type`` at ``point`` on ``day``,
    with every check's outcome in words."""
    patient_ref = f"Patient/{patient.get('id')}"
    checks: list[Check] = []
    document, why = identity_document(patient, day)
    if document is not None:
        held = "HKID" if document.kind == "hkid" else "Certificate of Exemption"
        checks.append(Check("identity", True, f"{patient_ref} holds a valid {held}"))
    else:
        checks.append(Check("identity", False, f"{patient_ref} cannot use vouchers: {why} (the scheme is for Hong Kong "
                                               "residents holding a valid HKID card or Certificate of Exemption)"))
    minimum_age, age_rule = rules.minimum_age(day)
    birth = str(patient.get("birthDate") or "")
    birth_year = int(birth[:4]) if re.match(r"^\d{4}", birth) else None
    if birth_year is None:
        checks.append(Check("age", False, f"{patient_ref} has no birth date, so its age in {day.year} is unknown", age_rule.id))
    elif birth_year <= day.year - minimum_age:
        checks.append(Check("age", True, f"born in {birth_year}: aged {minimum_age} or above in {day.year}", age_rule.id))
    else:
        checks.append(Check("age", False, f"born in {birth_year}: not aged {minimum_age} or above in {day.year} "
                                          f"(eligible from 1 January {birth_year + minimum_age})", age_rule.id))
    checks += _service_point_checks(point, point_reference, service_type, day, rules)
    return Eligibility(str(patient.get("id")), day, service_type, point_reference, tuple(checks), document, birth_year,
                       minimum_age, (age_rule.id,))


def _service_point_checks(point: ServicePoint | None, reference: str, service_type: str, day: date,
                          rules: Rules) -> list[Check]:
    if point is None:
        return [Check("service-point", False, f"{reference} is not in the institutions registry, so it is not an "
                                              "Elderly Health Care Voucher service point")]
    active = [d for d in point.designations if d.active_on(day)]
    if not active:
        if not point.designations:
            message = f"{point.name} ({reference}) is not an Elderly Health Care Voucher service point"
        else:
            spans = ", ".join(f"from {d.start}" + (f" until {d.end}" if d.end else "") for d in point.designations)
            message = f"{point.name} ({reference}) is an Elderly Health Care Voucher service point only {spans}, not on {day}"
        return [Check("service-point", False, message)]
    designation = active[0]
    checks = [Check("service-point", True, f"{point.name} ({reference}) is an Elderly Health Care Voucher service point "
                                           f"since {designation.start}")]
    kind = rules.service_types[service_type]
    if service_type in designation.excludes:
        checks.append(Check("service-type", False, f"{point.name} does not take vouchers for {kind.display.lower()} "
                                                   f"({service_type}): excluded there ({', '.join(designation.excludes)})"))
    elif designation.services and service_type not in designation.services and kind.category not in designation.services:
        checks.append(Check("service-type", False, f"{point.name} takes vouchers only for {', '.join(designation.services)} "
                                                   f"services, not {service_type}"))
    else:
        checks.append(Check("service-type", True, f"{point.name} takes vouchers for {service_type}"))
    return checks


def parse_reference(value: Any, resource_type: str, field_name: str, *, required: bool = True) -> str | None:
    """The id in ``Type/id`` (or a bare id); 400 naming the field otherwise."""
    if value is None or value == "":
        if required:
            raise InvalidRequest(f"{field_name} is required: a {resource_type} reference, {resource_type}/<id>",
                                 expression=(field_name,))
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{field_name} must be a {resource_type} reference written {resource_type}/<id>",
                             expression=(field_name,))
    ident = value.removeprefix(f"{resource_type}/")
    if "/" in ident or not _ID.match(ident):
        raise InvalidRequest(f"{field_name} '{value}' is not a {resource_type} reference ({resource_type}/<id>)",
                             expression=(field_name,))
    return ident


def parse_service_type(value: Any, rules: Rules, field_name: str) -> str:
    if not isinstance(value, str) or value not in rules.service_types:
        raise InvalidRequest(f"{field_name} '{value}' is not a voucher service type; one of "
                             f"{', '.join(rules.service_types)} ({rules.service_type_system})", expression=(field_name,))
    return value


def parse_day(value: Any, field_name: str) -> date:
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{field_name} '{value}' is not a date written YYYY-MM-DD", expression=(field_name,)) from None


class EligibilityService:
    """Eligibility in the caller's transaction, for the caller's institution."""

    def __init__(self, service: FhirService, rules: Rules) -> None:
        self.service = service
        self.rules = rules

    def institution(self) -> str:
        institution = self.service.repo.context.institution
        if not institution:
            raise Forbidden("vouchers are used at an institution: the access token names none (its 'institution' claim)")
        return institution

    def patient(self, patient_id: str) -> dict[str, Any]:
        """The Patient as this caller may see it (scopes and release gate apply; 404 otherwise)."""
        stored = self.service.repo.read("Patient", patient_id)
        if stored.content is None:
            raise NotFound(f"Patient/{patient_id} is not known")
        return stored.content

    def check(self, patient_id: str, day: date, service_type: str, location: str | None) -> tuple[Eligibility, dict[str, Any]]:
        institution = self.institution()
        patient = self.patient(patient_id)
        point, reference = self.service_point(institution, location)
        return decide(patient, point, reference, service_type, day, self.rules), patient

    def service_point(self, institution: str, location: str | None) -> tuple[ServicePoint | None, str]:
        """The service point: the Location when one is named (it must be the caller's), else the
        caller's Organization; None when the registry does not hold it."""
        if location is None:
            organization = self._registry_resource("Organization", institution)
            reference = f"Organization/{institution}"
            return (self._point(organization, reference) if organization else None), reference
        reference = f"Location/{location}"
        site = self._registry_resource("Location", location)
        if site is None:
            raise NotFound(f"location {reference} is not in the institutions registry", expression=("location",))
        owner = ((site.get("managingOrganization") or {}).get("reference") or "").removeprefix("Organization/")
        if owner != institution:
            raise Forbidden(f"location {reference} is a site of Organization/{owner or '?'}, not of the calling "
                            f"institution Organization/{institution}", expression=("location",))
        return self._point(site, reference), reference

    @staticmethod
    def _point(resource: dict[str, Any], reference: str) -> ServicePoint:
        institution = institution_from_resource(resource)
        return ServicePoint(reference, institution.name or reference,
                            tuple(d for d in institution.designations if d.programme == PROGRAMME))

    def _registry_resource(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        """A registry entry, read for BayLink's own use: institutions are not patient data."""
        repo = self.service.repo
        pks = repo.search_pks_internal(self.service.parser.parse(resource_type, [("_id", resource_id)]))
        loaded = repo.load_internal(pks)
        return loaded[0].content if loaded else None
