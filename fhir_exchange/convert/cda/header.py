"""The CDA header: recordTarget → Patient, author → Practitioner/Device/Organization,
custodian → Organization, encompassingEncounter → Encounter, authenticators → attesters."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fhir_exchange.convert.cda.context import Context
from fhir_exchange.convert.cda.datatypes import (
    addresses,
    codeable,
    date_only,
    date_time,
    identifiers,
    is_identity_document,
    names,
    period,
    telecoms,
)
from fhir_exchange.convert.cda.tables import local_identifier_systems, value_map
from fhir_exchange.convert.cda.xml import Element, attr, child, children, elements, fail, null, text
from fhir_exchange.identity.documents import document_for

SDTC = "urn:hl7-org:sdtc"
BCP47 = "urn:ietf:bcp:47"
SEARCH_SPECIAL = set("|,$\\")
# Identity documents first, in this order, when choosing the Patient's matching identifier.
DOCUMENT_ORDER = ("hkid", "cn-resident-id", "cn-residence-permit", "mo-bir", "cn-travel-permit-hkmo",
                  "cn-exit-entry-permit", "passport")


def token(found: dict[str, Any], *, matching: bool = False) -> str | None:
    """``system|value`` for a search, URL-encoded; None when it cannot be searched safely (or,
    ``matching``, when the system is a per-institution number no one may be matched on)."""
    system, value = found.get("system"), found.get("value")
    if not system or not value or SEARCH_SPECIAL & set(system + value):
        return None
    if matching and system in local_identifier_systems():
        return None
    return quote(f"{system}|{value}", safe="")


def _conditional_create(resource_type: str, ids: list[dict[str, Any]]) -> dict[str, Any]:
    for found in ids:
        key = token(found, matching=True)
        if key:
            return {"method": "POST", "url": resource_type, "ifNoneExist": f"identifier={key}"}
    return {"method": "POST", "url": resource_type}


def _key(resource_type: str, ids: list[dict[str, Any]], label: str | None) -> tuple[Any, ...]:
    for found in ids:
        if found.get("system") and found.get("value"):
            return (resource_type, found["system"], found["value"])
    return (resource_type, "name", label)


def reference(full_url: str | None, display: str | None = None) -> dict[str, Any] | None:
    if not full_url:
        return None
    result: dict[str, Any] = {"reference": full_url}
    if display:
        result["display"] = display
    return result


# --- Patient ------------------------------------------------------------------------------


def _gender(el: Element | None) -> str | None:
    if el is None or null(el):
        return None
    code = attr(el, "code")
    maps = value_map("gender")
    system = attr(el, "codeSystem")
    if system in maps:
        return maps[system].get(code or "")
    for table in maps.values():
        if code in table:
            return table[code]
    return None


def _best_identifier(ids: list[dict[str, Any]]) -> dict[str, Any] | None:
    def rank(found: dict[str, Any]) -> int:
        document = document_for(found.get("system"))
        if document is not None and document.kind in DOCUMENT_ORDER:
            return DOCUMENT_ORDER.index(document.kind)
        return len(DOCUMENT_ORDER) + (0 if found.get("system", "").startswith("urn:oid:") else 1)

    candidates = [found for found in ids if token(found, matching=True)]
    return min(candidates, key=rank) if candidates else None


def patient(ctx: Context, root: Element) -> str:
    targets = children(root, "recordTarget")
    role = child(targets[0], "patientRole") if targets else None
    if role is None:
        raise fail("the document has no recordTarget/patientRole: it names no patient", targets[0] if targets else root)
    if len(targets) > 1:
        ctx.warn("the document names more than one recordTarget; only the first is converted", targets[1])
    person = child(role, "patient")
    ids = identifiers(ctx, children(role, "id") + children(person, "id"))
    resource: dict[str, Any] = {"resourceType": "Patient"}
    if ids:
        resource["identifier"] = ids
    if person is not None and (found := names(children(person, "name"))):
        resource["name"] = found
    if found := telecoms(children(role, "telecom")):
        resource["telecom"] = found
    if person is not None:
        if gender := _gender(child(person, "administrativeGenderCode")):
            resource["gender"] = gender
        if born := date_only(ctx, child(person, "birthTime")):
            resource["birthDate"] = born
        deceased = person.find(f"{{{SDTC}}}deceasedInd")
        deceased_time = person.find(f"{{{SDTC}}}deceasedTime")
        if deceased_time is not None and (when := date_time(ctx, deceased_time)):
            resource["deceasedDateTime"] = when
        elif deceased is not None and deceased.get("value") in ("true", "false"):
            resource["deceasedBoolean"] = deceased.get("value") == "true"
    if found := addresses(children(role, "addr")):
        resource["address"] = found
    if person is not None:
        if marital := codeable(ctx, child(person, "maritalStatusCode")):
            resource["maritalStatus"] = marital
        contacts = [c for c in (_guardian(ctx, g) for g in children(person, "guardian")) if c]
        if contacts:
            resource["contact"] = contacts
        communication = []
        for item in children(person, "languageCommunication"):
            code = attr(child(item, "languageCode"), "code")
            if not code:
                continue
            entry: dict[str, Any] = {"language": {"coding": [{"system": BCP47, "code": code}]}}
            preferred = attr(child(item, "preferenceInd"), "value")
            if preferred in ("true", "false"):
                entry["preferred"] = preferred == "true"
            communication.append(entry)
        if communication:
            resource["communication"] = communication
    if organization_url := organization(ctx, child(role, "providerOrganization")):
        resource["managingOrganization"] = {"reference": organization_url}
    best = _best_identifier(ids)
    if best is None:
        ctx.warn("the patient has no identifier to match on: a new Patient is created", role)
        request = {"method": "POST", "url": "Patient"}
    else:
        if not is_identity_document(best):
            ctx.warn(f"the patient is matched on {best['system']} (no identity document number in the document)",
                     once="patient-match")
        request = {"method": "PUT", "url": f"Patient?identifier={token(best, matching=True)}"}
    ctx.patient = ctx.add(resource, request)
    return ctx.patient


def _guardian(ctx: Context, el: Element) -> dict[str, Any] | None:
    result: dict[str, Any] = {}
    relation = codeable(ctx, child(el, "code"))
    result["relationship"] = [relation] if relation else [{"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "GUARD", "display": "guardian"}]}]
    person = child(el, "guardianPerson")
    if person is not None and (found := names(children(person, "name"))):
        result["name"] = found[0]
    if found := telecoms(children(el, "telecom")):
        result["telecom"] = found
    if found := addresses(children(el, "addr")):
        result["address"] = found[0]
    return result if len(result) > 1 else None


# --- organisations, people, devices ----------------------------------------------------------


def organization(ctx: Context, el: Element | None) -> str | None:
    if el is None or (null(el) and not elements(el)):
        return None
    ids = identifiers(ctx, children(el, "id"))
    name = text(child(el, "name"))
    if not ids and not name:
        return None
    resource: dict[str, Any] = {"resourceType": "Organization"}
    if ids:
        resource["identifier"] = ids
    if name:
        resource["name"] = name
    if found := telecoms(children(el, "telecom")):
        resource["telecom"] = found
    if found := addresses(children(el, "addr")):
        resource["address"] = found
    return ctx.add(resource, _conditional_create("Organization", ids), key=_key("Organization", ids, name))


def practitioner(ctx: Context, entity: Element | None) -> str | None:
    """assignedAuthor/assignedEntity with an assignedPerson → Practitioner."""
    if entity is None:
        return None
    person = child(entity, "assignedPerson")
    if person is None:
        person = child(entity, "associatedPerson")
    ids = identifiers(ctx, children(entity, "id"))
    found_names = names(children(person, "name")) if person is not None else []
    if not found_names and (person is None or not ids):
        return None
    resource: dict[str, Any] = {"resourceType": "Practitioner"}
    if ids:
        resource["identifier"] = ids
    if found_names:
        resource["name"] = found_names
    if found := telecoms(children(entity, "telecom")):
        resource["telecom"] = found
    if found := addresses(children(entity, "addr")):
        resource["address"] = found
    label = str(found_names[0]) if found_names else None
    return ctx.add(resource, _conditional_create("Practitioner", ids), key=_key("Practitioner", ids, label))


def device(ctx: Context, el: Element | None) -> str | None:
    if el is None:
        return None
    device_names = []
    model = text(child(el, "manufacturerModelName"))
    software = text(child(el, "softwareName"))
    if model:
        device_names.append({"name": model, "type": "model-name"})
    if software:
        device_names.append({"name": software, "type": "other"})
    if not device_names:
        return None
    resource = {"resourceType": "Device", "deviceName": device_names}
    return ctx.add(resource, key=("Device", model, software))


def authors(ctx: Context, els: list[Element]) -> list[dict[str, Any]]:
    """Each author as a reference: the person (or device) who wrote, else the organisation."""
    refs: list[dict[str, Any]] = []
    for el in els:
        assigned = child(el, "assignedAuthor")
        if assigned is None:
            continue
        who = practitioner(ctx, assigned) or device(ctx, child(assigned, "assignedAuthoringDevice"))
        organisation = organization(ctx, child(assigned, "representedOrganization"))
        chosen = who or organisation
        if chosen and {"reference": chosen} not in refs:
            refs.append({"reference": chosen})
    return refs


def custodian(ctx: Context, root: Element) -> str | None:
    return organization(ctx, child(root, "custodian", "assignedCustodian", "representedCustodianOrganization"))


def attesters(ctx: Context, root: Element) -> list[dict[str, Any]]:
    result = []
    modes = value_map("attester_mode")
    for name in ("legalAuthenticator", "authenticator"):
        for el in children(root, name):
            attester: dict[str, Any] = {"mode": modes[name]}
            if when := date_time(ctx, child(el, "time")):
                attester["time"] = when
            if party := practitioner(ctx, child(el, "assignedEntity")):
                attester["party"] = {"reference": party}
            result.append(attester)
    return result


# --- the encounter ------------------------------------------------------------------------------


ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"


def encounter_class_and_type(ctx: Context, code_el: Element | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Encounter.class is required: an ActCode from the source when it gives one, else the
    null flavour UNK (the class is not guessed); any other code goes to Encounter.type."""
    concept = codeable(ctx, code_el)
    types: list[dict[str, Any]] = []
    for coding in (concept or {}).get("coding", []):
        if coding.get("system") == ACT_CODE:
            return {k: v for k, v in coding.items() if k in ("system", "code", "display")}, ([concept] if concept else [])
    if concept:
        types.append(concept)
    return {"system": NULL_FLAVOR, "code": "UNK", "display": "unknown"}, types


def encompassing_encounter(ctx: Context, root: Element) -> str | None:
    el = child(root, "componentOf", "encompassingEncounter")
    if el is None:
        return None
    resource: dict[str, Any] = {"resourceType": "Encounter"}
    if ids := identifiers(ctx, children(el, "id")):
        resource["identifier"] = ids
    when = period(ctx, child(el, "effectiveTime"))
    resource["status"] = "finished" if when and "end" in when else "unknown"
    klass, types = encounter_class_and_type(ctx, child(el, "code"))
    resource["class"] = klass
    if types:
        resource["type"] = types
    resource["subject"] = {"reference": ctx.patient}
    participants = []
    responsible = practitioner(ctx, child(el, "responsibleParty", "assignedEntity"))
    if responsible:
        participants.append({"type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                   "code": "RESP"}]}], "individual": {"reference": responsible}})
    for item in children(el, "encounterParticipant"):
        who = practitioner(ctx, child(item, "assignedEntity"))
        if not who:
            continue
        entry: dict[str, Any] = {"individual": {"reference": who}}
        role = attr(item, "typeCode")
        if role:
            entry["type"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                          "code": role}]}]
        participants.append(entry)
    if participants:
        resource["participant"] = participants
    if when:
        resource["period"] = when
    disposition = codeable(ctx, child(el, "dischargeDispositionCode"))
    if disposition:
        resource["hospitalization"] = {"dischargeDisposition": disposition}
    facility = child(el, "location", "healthCareFacility")
    if facility is not None:
        place = child(facility, "location")
        place_name = text(child(place, "name")) if place is not None else None
        place_ids = identifiers(ctx, children(facility, "id"))
        if place_name or place_ids:
            location: dict[str, Any] = {"resourceType": "Location"}
            if place_ids:
                location["identifier"] = place_ids
            if place_name:
                location["name"] = place_name
            if found := addresses(children(place, "addr")) if place is not None else []:
                location["address"] = found[0]
            location_url = ctx.add(location, _conditional_create("Location", place_ids),
                                   key=_key("Location", place_ids, place_name))
            resource["location"] = [{"location": {"reference": location_url}}]
        provider = child(facility, "serviceProviderOrganization")
        outermost = provider
        while outermost is not None:
            whole = child(outermost, "asOrganizationPartOf", "wholeOrganization")
            if whole is None:
                break
            outermost = whole
        organisation = organization(ctx, outermost) or organization(ctx, provider)
        if organisation:
            resource["serviceProvider"] = {"reference": organisation}
    return ctx.add(resource)
