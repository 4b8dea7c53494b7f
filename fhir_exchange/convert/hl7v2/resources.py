"""Segments to resources. The converter walks a message's segments in order, keeping what the
standard's groups mean as state — the current patient (PID), visit (PV1), order (ORC), request
or report (OBR), medication order (RXO/RXE), document (TXA), appointment (SCH), specimen
(SPM) — so one walk serves every message structure:

=====================  ======================================================================
PID, PD1, NK1          Patient (NK1 → ``Patient.contact``: kept with the patient it belongs
                       to, updated with it, never a duplicate RelatedPerson on a resend)
MRG                    A40: ``Patient.link`` (see ``merge``); A47: the patient found by its
                       prior identifiers gets the new ones
PV1, PV2               Encounter (conditional update on PV1-19, the visit number)
AL1, IAM               AllergyIntolerance
DG1, PRB               Condition (encounter diagnosis; problem-list item)
PR1                    Procedure
IN1                    Coverage
ORC + OBR              ServiceRequest (orders, referrals' results, documents' orders);
                       in results (ORU, OUL) a DiagnosticReport
OBX                    Observation (NM → valueQuantity in UCUM, CE/CWE → valueCodeableConcept,
                       ST/TX/FT → valueString, …); ED/RP → DocumentReference; in MDM the
                       document's content
SPM                    Specimen
RXO, RXE, RXR, TQ1     MedicationRequest
RXD                    MedicationDispense
RXA, RXR               Immunization
TXA (+ OBX)            DocumentReference
SCH, AIS/AIG/AIL/AIP   Appointment
RF1, PRD               ServiceRequest + Task (the shape of ``POST /referrals``)
NTE                    a note on the resource it follows
=====================  ======================================================================

Segments that carry nothing the shared record needs (billing, guarantors, access
restrictions …) are named in the conversion's warnings, once per kind.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir_exchange.convert.base import ConversionError, Source
from fhir_exchange.convert.hl7v2.bundle import BundleBuilder, identifier_query
from fhir_exchange.convert.hl7v2.datatypes import MAX_INTEGER, V2_0203, Types, fhir_integer, fhir_number
from fhir_exchange.convert.hl7v2.message import EMPTY, Message, Rep, Segment
from fhir_exchange.convert.hl7v2.profiles import Document, Profile
from fhir_exchange.convert.hl7v2.tables import COMMON, EVENTS

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
SUBSCRIBER = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
CONTACT_ROLE = "http://terminology.hl7.org/CodeSystem/v2-0131"
MOTHERS_MAIDEN_NAME = "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
# ServiceRequest.category of a referral, as referral/api.py writes it (SNOMED CT "Patient referral")
REFERRAL_CATEGORY = {"coding": [{"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}]}
NOTE_TYPES = frozenset({"Observation", "ServiceRequest", "MedicationRequest", "MedicationDispense", "Immunization",
                        "AllergyIntolerance", "Condition", "Procedure", "Specimen", "Task"})
TEXT_TYPES = frozenset({"ST", "TX", "FT", "TN", "ID", "IS", "FN", "XPN", "XAD", "XCN", "XON", "XTN", "CX", "EI", "CP",
                        "MO", "CK", "CN", "AD", "PN", "TEL", "MA", "NA", "CM", "DR", "CQ"})
CODED_TYPES = frozenset({"CE", "CWE", "CNE", "CF", "CD", "CV", "CO"})
DATE_TYPES = frozenset({"DT", "DTM", "TS"})


@dataclass
class Held:
    """A resource in the Bundle and its fullUrl (the resource is still edited in place)."""

    ref: str
    resource: dict[str, Any]


@dataclass
class Order:
    segment: Segment
    placer: dict[str, Any] | None
    filler: dict[str, Any] | None
    status: str | None
    requester: str | None
    authored: str | None
    request: Held | None = None  # ServiceRequest / MedicationRequest made for it
    report: Held | None = None
    medication: Held | None = None


@dataclass
class PatientHeld(Held):
    query: list[dict[str, Any]] = field(default_factory=list)  # the identifiers it is matched on
    local_key: str | None = None  # a non-identity identifier value, for keys of its records


def _ref(held: Held | None) -> dict[str, str] | None:
    return {"reference": held.ref} if held else None


class Converter:
    def __init__(self, message: Message, source: Source, profile: Profile, types: Types, bundle: BundleBuilder,
                 family: str, trigger: str, event: dict[str, Any]) -> None:
        self.message = message
        self.source = source
        self.profile = profile
        self.types = types
        self.bundle = bundle
        self.family = family
        self.trigger = trigger
        self.event = event
        self.patient: PatientHeld | None = None
        self.encounter: Held | None = None
        self.order: Order | None = None
        self.report: Held | None = None
        self.request: Held | None = None
        self.medication: Held | None = None
        self.immunization: Held | None = None
        self.document: Held | None = None
        self.document_text: list[str] = []
        self.document_attachments: list[dict[str, Any]] = []
        self.document_title = ""
        self.appointment_times: dict[str, Any] = {}
        self.appointments: list[tuple[Held, dict[str, Any]]] = []
        self.appointment: Held | None = None
        self.specimen: Held | None = None
        self.last: dict[str, Any] | None = None
        self.referral: Segment | None = None
        self.providers: dict[str, tuple[str | None, str | None]] = {}
        self.supporting: list[str] = []
        self.seen: set[str] = set()
        self._sender: str | None = None
        self._patients: dict[str, PatientHeld] = {}
        self.report_observations: list[dict[str, Any]] = []
        self.message_type = message.msh.get(9).upper()

    def warn(self, text: str) -> None:
        self.types.warn(text)

    # --- the walk --------------------------------------------------------------------------------

    def run(self) -> None:
        requires = EVENTS["segment_requires"]
        silent = set(EVENTS["silent"])
        for segment in self.message.segments[1:]:
            name = segment.name
            needed = requires.get(name)
            if needed and not self.seen.intersection(needed):
                raise segment.error(f"{name} must follow {' or '.join(needed)}: the segments are out of order",
                                    hl7_error="100")
            self.seen.add(name)
            handler = getattr(self, f"on_{name}", None)
            if handler is not None and not (name == "TXA" and self.family != "document"):
                handler(segment)
            elif name in silent:
                continue
            elif name.startswith("Z"):
                self.warn(f"{name}: site-defined Z-segments are not converted")
            else:
                what = EVENTS["not_converted"].get(name, "not used by BayLink's shared record")
                self.warn(f"{name} segments are not converted: {what}")
        if self.patient is None:
            raise ConversionError("the message has no PID segment: every message BayLink converts is about a patient",
                                  hl7_error="100", segment="PID")
        self.finish()

    def finish(self) -> None:
        for held, times in self.appointments:
            self._finish_appointment(held.resource, times)
        if self.document is not None:
            self._finish_document()
        if self.family == "referral":
            self._finish_referral()

    # --- shared pieces ---------------------------------------------------------------------------

    def subject(self) -> dict[str, str]:
        assert self.patient is not None
        return {"reference": self.patient.ref}

    def context(self, resource: dict[str, Any], key: str = "encounter") -> None:
        if self.encounter is not None:
            resource[key] = {"reference": self.encounter.ref}

    def sender(self) -> str:
        """The sending institution: BayLink's Organization for the caller's institution, else
        one made from MSH-4 (the sending facility)."""
        if self._sender is None:
            if self.source.institution:
                self._sender = f"Organization/{self.source.institution}"
            else:
                self._sender = self.organization(self.message.msh.rep(4), "MSH-4") or self.bundle.create_once(
                    {"resourceType": "Organization", "name": "unknown sending facility"}, None, "sender:unknown")
        return self._sender

    def practitioner(self, rep: Rep, where: str) -> str | None:
        """An XCN as a Practitioner (created once per identifier)."""
        if not rep:
            return None
        name = self.types.xcn_name(rep, where)
        identifier = None
        if rep.c(1):
            identifier = {"system": self.types.hd_system(rep.c(9, 1), rep.c(9, 2), rep.c(9, 3), "practitioner"),
                          "value": rep.c(1)}
            kind = self.types.identifier_type(rep.c(13))
            if kind:
                identifier["type"] = kind
        if name is None and identifier is None:
            return None
        resource: dict[str, Any] = {"resourceType": "Practitioner"}
        if identifier:
            resource["identifier"] = [identifier]
        if name:
            resource["name"] = [name]
        return self.bundle.create_once(resource, identifier, None if identifier else f"Practitioner:{rep.text('|')}")

    def organization(self, rep: Rep, where: str, *, address: Rep = EMPTY, telecom: Rep = EMPTY) -> str | None:
        """An XON (name^type^id^…^authority (6)^…^identifier (10)) or HD as an Organization."""
        if not rep:
            return None
        name = rep.c(1)
        value = rep.c(10) or rep.c(3)
        identifier = None
        if value:
            identifier = {"system": self.types.hd_system(rep.c(6, 1), rep.c(6, 2), rep.c(6, 3), "organization"),
                          "value": value}
        elif where.startswith("MSH") and (rep.c(1) or rep.c(2)):
            # an HD: namespace^universal id^type
            identifier = {"system": self.types.hd_system("", rep.c(2), rep.c(3), "organization"), "value": rep.c(2)} \
                if rep.c(2) else {"system": self.types.local_system("organization"), "value": rep.c(1)}
        resource: dict[str, Any] = {"resourceType": "Organization"}
        if identifier:
            resource["identifier"] = [identifier]
        if name:
            resource["name"] = name
        elif not identifier:
            return None
        found = self.types.address(address)
        if found:
            resource["address"] = [found]
        point = self.types.telecom(telecom)
        if point:
            resource["telecom"] = [point]
        return self.bundle.create_once(resource, identifier, None if identifier else f"Organization:{name}")

    def note(self, resource: dict[str, Any] | None, text: str) -> None:
        text = text.strip()
        if not text or resource is None:
            return
        kind = resource["resourceType"]
        if kind in NOTE_TYPES:
            resource.setdefault("note", []).append({"text": text})
        elif kind == "DiagnosticReport":
            resource["conclusion"] = f"{resource['conclusion']}\n{text}" if resource.get("conclusion") else text
        elif kind == "Appointment":
            resource["comment"] = f"{resource['comment']}\n{text}" if resource.get("comment") else text
        elif kind == "DocumentReference":
            resource["description"] = f"{resource['description']}\n{text}" if resource.get("description") else text
        else:
            self.warn(f"NTE: comments on a {kind} are not kept (FHIR's {kind} has no note)")

    def keyed(self, resource: dict[str, Any], identifiers: list[dict[str, Any]], *, conditional: bool = True,
              merge: bool = False, synthetic: bool = False) -> str:
        """Written as a conditional update on its identifiers when it has any, else created.

        The same identifier twice in one message: with ``merge`` (a visit, a diagnosis, an
        allergy, a policy sent again in a later group) the later segment's version replaces the
        earlier one. Otherwise (two results with one set id, two requests under one order
        number) the second is kept beside the first: a key BayLink made up (``synthetic``) gets
        the occurrence appended (…-2), stable when the message is sent again; the sender's own
        identifier is left off the second resource, so that no two resources ever share it and
        later updates on it still find exactly one."""
        if not identifiers or not conditional:
            return self.bundle.post(resource)
        key = identifier_query(resource["resourceType"], identifiers)
        existing = self.bundle.existing(key)
        if existing is None:
            return self.bundle.put(resource, identifiers)
        if merge:  # the bundle's resource takes the later content (callers use bundle.resource(ref))
            meta = existing["resource"].get("meta")
            existing["resource"].clear()
            existing["resource"].update({**resource, "meta": meta})
            return existing["fullUrl"]
        if synthetic:
            for occurrence in range(2, 10_000):
                again = [{**identifiers[0], "value": f"{identifiers[0]['value']}-{occurrence}"}]
                if self.bundle.existing(identifier_query(resource["resourceType"], again)) is None:
                    resource["identifier"] = [again[0] if i == identifiers[0] else i for i in resource["identifier"]]
                    return self.bundle.put(resource, again)
        self.warn(f"two {resource['resourceType']} resources in one message share the identifier "
                  f"{identifiers[0]['value']}: the second is recorded without it")
        resource["identifier"] = [i for i in resource.get("identifier") or [] if i != identifiers[0]]
        if not resource["identifier"]:
            resource.pop("identifier")
        return self.bundle.post(resource)

    def local_key(self, *parts: str) -> str | None:
        """A stable key for a patient's records that have no identifier of their own, built from
        the sender's own patient number (never an identity document number)."""
        if self.patient is None or self.patient.local_key is None or not all(parts):
            return None
        return "-".join((self.patient.local_key, *parts))

    # --- patient ---------------------------------------------------------------------------------

    def _patient_identifiers(self, segment: Segment, number: int) -> tuple[list[dict[str, Any]], Document | None,
                                                                           dict[str, Any] | None]:
        """The identifiers of a PID-3 / MRG-1: identity documents under BayLink's systems, the
        sender's own numbers under its system; and the best document and first local number."""
        identifiers: list[dict[str, Any]] = []
        documents: list[Document] = []
        local = None
        for rep in segment.reps(number):
            value = rep.c(1)
            if not value:
                continue
            authority = rep.c(4, 1) or rep.c(4, 2)
            document, why = self.profile.document(value, authority, rep.c(5))
            if why:
                self.warn(f"{segment.name}-{number}: {why}; kept as the sender's own identifier")
            if document is not None:
                documents.append(document)
                identifier: dict[str, Any] = {"system": document.system, "value": document.value}
                if document.type_code:
                    identifier["type"] = {"coding": [{"system": V2_0203, "code": document.type_code}]}
                identifiers.append(identifier)
                continue
            identifier = self.types.cx(rep, "patient")
            if identifier is None:
                continue
            identifiers.append(identifier)
            code = rep.c(5).upper()
            if local is None and (not code or code in COMMON["local_identifier_types"]):
                local = identifier
        best = min(documents, key=lambda d: self.profile.rank(d.kind)) if documents else None
        if local is None:
            local = next((i for i in identifiers if best is None or i["system"] != best.system), None)
        return identifiers, best, local

    def on_PID(self, segment: Segment) -> None:
        identifiers, best, local = self._patient_identifiers(segment, 3)
        if not identifiers:
            if segment.rep(2):  # PID-2, the external id of v2.3 senders
                identifiers = [i for i in (self.types.cx(segment.rep(2), "patient"),) if i]
                local = identifiers[0] if identifiers else None
            if not identifiers:
                raise segment.error("the patient identifier list is empty: BayLink needs at least one identifier "
                                    "(an identity document or the sender's patient number)", 3, hl7_error="101")
        query = [{"system": best.system, "value": best.value}] if best else []
        if local is not None:
            query.append({"system": local["system"], "value": local["value"]})
        patient: dict[str, Any] = {"resourceType": "Patient", "identifier": identifiers,
                                   "active": self.event.get("patient") != "inactive"}
        for rep in segment.reps(4):
            alternate = self.types.cx(rep, "patient")
            if alternate and alternate not in identifiers:
                identifiers.append(alternate)
        if segment.rep(19):
            self.warn("PID-19 (a US social security number) is not kept")
        names = [n for n in (self.types.xpn(rep, "PID-5") for rep in segment.reps(5)) if n]
        names += [{**n, "use": "usual"} for n in (self.types.xpn(rep, "PID-9") for rep in segment.reps(9)) if n]
        if names:
            patient["name"] = names
        maiden = segment.rep(6)
        if maiden:
            patient["extension"] = [{"url": MOTHERS_MAIDEN_NAME, "valueString": maiden.text()}]
        gender = COMMON["administrative_sex"].get(segment.get(8).upper())
        if gender:
            patient["gender"] = gender
        born = self.types.date(segment.get(7), "PID-7")
        if born:
            patient["birthDate"] = born
        addresses = [a for a in (self.types.address(rep) for rep in segment.reps(11)) if a]
        if addresses:
            patient["address"] = addresses
        telecom = []
        for number, default_use in ((13, "home"), (14, "work"), (40, None)):
            for rep in segment.reps(number):
                point = self.types.telecom(rep)
                if point:
                    if default_use and "use" not in point and point["system"] != "email":
                        point["use"] = default_use
                    if point not in telecom:
                        telecom.append(point)
        if telecom:
            patient["telecom"] = telecom
        marital = segment.rep(16)
        if marital:
            concept = self.types.codeable(marital if marital.c(3) else Rep([[marital.c(1)], [marital.c(2)], ["HL70002"]]))
            v3 = COMMON["marital_status"].get(marital.c(1).upper())
            if concept is not None:
                if v3:
                    concept.setdefault("coding", []).append({"system": MARITAL, "code": v3})
                patient["maritalStatus"] = concept
        language = segment.rep(15)
        if language:
            concept = self.types.codeable(language)
            if concept:
                patient["communication"] = [{"language": concept}]
        if segment.get(30).upper() == "Y" or segment.get(29):
            died = self.types.date_time(segment.get(29), "PID-29")
            patient["deceasedDateTime" if died else "deceasedBoolean"] = died or True
        elif segment.get(30).upper() == "N":
            patient["deceasedBoolean"] = False
        if segment.get(24).upper() == "Y":
            order = fhir_integer(segment.get(25), 1)
            patient["multipleBirthInteger" if order else "multipleBirthBoolean"] = order or True
        key = identifier_query("Patient", query)
        if key in self._patients:  # the same patient again in this message (e.g. A41's groups)
            self.patient = self._patients[key]
        else:
            self.patient = PatientHeld(self.bundle.put(patient, query), patient, query, local["value"] if local else None)
            self._patients[key] = self.patient
        self.encounter = None
        self.last = self.patient.resource

    def on_PD1(self, segment: Segment) -> None:
        assert self.patient is not None
        carers = [c for c in (self.organization(rep, "PD1-3") for rep in segment.reps(3)) if c]
        carers += [c for c in (self.practitioner(rep, "PD1-4") for rep in segment.reps(4)) if c]
        if carers:
            self.patient.resource["generalPractitioner"] = [{"reference": c} for c in carers]

    def on_NK1(self, segment: Segment) -> None:
        assert self.patient is not None
        contact: dict[str, Any] = {}
        relationship = []
        kin = segment.rep(3)
        if kin:
            concept = self.types.codeable(kin if kin.c(3) else Rep([[kin.c(1)], [kin.c(2) or COMMON[
                "contact_relationship"].get(kin.c(1).upper(), "")], ["HL70063"]]))
            if concept:
                relationship.append(concept)
        role = segment.rep(7)
        if role:
            relationship.append({"coding": [{"system": CONTACT_ROLE, "code": role.c(1), **(
                {"display": role.c(2)} if role.c(2) else {})}]})
        if relationship:
            contact["relationship"] = relationship
        name = next((n for n in (self.types.xpn(rep, "NK1-2") for rep in segment.reps(2)) if n), None)
        if name:
            contact["name"] = name
        telecom = [p for p in (self.types.telecom(rep) for number in (5, 6, 40) for rep in segment.reps(number)) if p]
        if telecom:
            contact["telecom"] = telecom
        address = self.types.address(segment.rep(4))
        if address:
            contact["address"] = address
        gender = COMMON["administrative_sex"].get(segment.get(15).upper())
        if gender:
            contact["gender"] = gender
        if segment.get(13, 1):
            contact["organization"] = {"display": segment.get(13, 1)}
        period = self.types.period(segment.get(8), segment.get(9), "NK1-8/9")
        if period:
            contact["period"] = period
        if set(contact) & {"name", "telecom", "address", "organization"}:
            self.patient.resource.setdefault("contact", []).append(contact)
        else:
            self.warn("NK1: a next of kin without a name, address, telephone or organisation is not kept")

    def on_MRG(self, segment: Segment) -> None:
        """A40 merge: the surviving patient (PID) ``replaces`` the prior one (MRG-1), which is
        marked inactive and ``replaced-by`` the survivor — the pair FHIR defines for merges; the
        prior record keeps its identifiers and MRG-7 name, so the link can be followed from either.
        A47 change of identifiers: the patient found by MRG-1 is updated with PID-3's identifiers."""
        assert self.patient is not None
        action = self.event.get("patient")
        if action not in ("merge", "identifier-change"):
            if action == "account-merge":
                self.warn(f"ADT^{self.trigger}: the accounts are merged by the sender; BayLink records the patient "
                          f"and visit as sent")
            return
        prior, best, local = self._patient_identifiers(segment, 1)
        if not prior:
            raise segment.error("the prior patient identifier list is empty", 1, hl7_error="101")
        query = [{"system": best.system, "value": best.value}] if best else []
        if local is not None:
            query.append({"system": local["system"], "value": local["value"]})
        if action == "identifier-change":
            entry = next(e for e in self.bundle.entries if e["fullUrl"] == self.patient.ref)
            entry["request"]["url"] = identifier_query("Patient", query)
            return
        if any(i in self.patient.query for i in query):
            raise segment.error("the prior patient (MRG-1) is the surviving patient itself", 1, hl7_error="102")
        replaced: dict[str, Any] = {"resourceType": "Patient", "identifier": prior, "active": False,
                                    "link": [{"other": {"reference": self.patient.ref}, "type": "replaced-by"}]}
        name = self.types.xpn(segment.rep(7), "MRG-7")
        if name:
            replaced["name"] = [name]
        prior_ref = self.bundle.put(replaced, query)
        self.patient.resource.setdefault("link", []).append({"other": {"reference": prior_ref}, "type": "replaces"})

    # --- visit -----------------------------------------------------------------------------------

    def on_PV1(self, segment: Segment) -> None:
        status = self.event.get("encounter", "derived" if self.family != "adt" else None)
        patient_class = segment.get(2).upper()
        if status is None or patient_class == "N":
            return
        if status == "derived":
            status = "finished" if segment.get(45) else "in-progress" if segment.get(44) else "unknown"
        code = COMMON["patient_class"].get(patient_class)
        encounter: dict[str, Any] = {
            "resourceType": "Encounter", "status": status,
            "class": {"system": ACT_CODE, "code": code} if code else
            {"system": "http://terminology.hl7.org/CodeSystem/v2-0004", "code": patient_class} if patient_class else
            {"system": NULL_FLAVOR, "code": "UNK"},
            "subject": self.subject(),
        }
        identifiers = [i for i in (self.types.cx(segment.rep(19), "visit"), self.types.cx(segment.rep(50), "visit")) if i]
        if identifiers:
            encounter["identifier"] = identifiers
        kinds = [k for k in (self.types.simple_code(segment.get(4), "0007"), self.types.simple_code(segment.get(18), "0018"))
                 if k]
        if kinds:
            encounter["type"] = kinds
        service = self.types.simple_code(segment.get(10), "0069")
        if service:
            encounter["serviceType"] = service
        period = self.types.period(segment.get(44), segment.get(45), "PV1-44/45")
        if period:
            encounter["period"] = period
        participants = []
        for number, role in ((7, "ATND"), (8, "REF"), (9, "CON"), (17, "ADM")):
            for rep in segment.reps(number):
                who = self.practitioner(rep, f"PV1-{number}")
                if who:
                    participants.append({"type": [{"coding": [{"system": PARTICIPATION, "code": role}]}],
                                         "individual": {"reference": who}})
        if participants:
            encounter["participant"] = participants
        hospitalization: dict[str, Any] = {}
        preadmit = self.types.cx(segment.rep(5), "preadmission")
        if preadmit:
            hospitalization["preAdmissionIdentifier"] = preadmit
        for key, number, table in (("admitSource", 14, "0023"), ("reAdmission", 13, "0092"),
                                   ("dischargeDisposition", 36, "0112")):
            concept = self.types.simple_code(segment.get(number), table)
            if concept:
                hospitalization[key] = concept
        if hospitalization:
            encounter["hospitalization"] = hospitalization
        locations = []
        for number, state in ((3, "active" if status != "finished" else "completed"), (11, "active"), (6, "completed")):
            text = self.types.location_text(segment.rep(number))
            if text:
                locations.append({"location": {"display": text}, "status": state})
        if locations:
            encounter["location"] = locations
        encounter["serviceProvider"] = {"reference": self.sender()}
        ref = self.keyed(encounter, identifiers[:1], merge=True)
        self.encounter = Held(ref, self.bundle.resource(ref))
        self.last = None

    def on_PV2(self, segment: Segment) -> None:
        if self.encounter is None:
            return
        reason = self.types.codeable(segment.rep(3))
        if reason:
            self.encounter.resource["reasonCode"] = [reason]

    # --- allergies, diagnoses, procedures, cover ---------------------------------------------------

    def _allergy(self, segment: Segment, type_number: int, code_number: int, severity_number: int, reaction_number: int,
                 date_number: int, action: str, identifier_number: int | None) -> None:
        drug = COMMON["allergy_type"].get(segment.get(type_number).upper(), [None])[0] == "medication"
        substance = self.types.codeable(segment.rep(code_number), "medication" if drug else None)
        if substance is None:
            self.warn(f"{segment.name}: an allergy without an allergen is not kept")
            return
        allergy: dict[str, Any] = {"resourceType": "AllergyIntolerance", "patient": self.subject(), "code": substance}
        if COMMON["allergy_action"].get(action.upper()) == "entered-in-error":
            allergy["verificationStatus"] = {"coding": [{"system": ALLERGY_VERIFICATION, "code": "entered-in-error"}]}
        else:
            allergy["clinicalStatus"] = {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]}
        category, kind = COMMON["allergy_type"].get(segment.get(type_number).upper(), [None, None])
        if category:
            allergy["category"] = [category]
        if kind:
            allergy["type"] = kind
        severity, criticality = COMMON["allergy_severity"].get(segment.get(severity_number).upper(), [None, None])
        if criticality:
            allergy["criticality"] = criticality
        reactions = [rep.text() for rep in segment.reps(reaction_number)]
        if reactions:
            reaction: dict[str, Any] = {"manifestation": [{"text": text} for text in reactions]}
            if severity:
                reaction["severity"] = severity
            allergy["reaction"] = [reaction]
        onset = self.types.date_time(segment.get(date_number), f"{segment.name}-{date_number}")
        if onset:
            allergy["onsetDateTime"] = onset
        self.context(allergy)
        identifiers = []
        if identifier_number and segment.rep(identifier_number):
            identifiers = [i for i in (self.types.ei(segment.rep(identifier_number), "allergy"),) if i]
        else:
            key = self.local_key(segment.get(code_number) or segment.get(code_number, 2))
            if key:
                identifiers = [{"system": self.types.local_system("allergy"), "value": key}]
        if identifiers:
            allergy["identifier"] = identifiers
        ref = self.keyed(allergy, identifiers, conditional=self.family != "referral", merge=True)
        self.supporting.append(ref)
        self.last = self.bundle.resource(ref)

    def on_AL1(self, segment: Segment) -> None:
        self._allergy(segment, 2, 3, 4, 5, 6, "", None)

    def on_IAM(self, segment: Segment) -> None:
        self._allergy(segment, 2, 3, 4, 5, 11, segment.get(6), 7)

    def on_DG1(self, segment: Segment) -> None:
        code = self.types.codeable(segment.rep(3), "diagnosis", text=segment.get(4))
        if code is None:
            self.warn("DG1: a diagnosis without a code or description is not kept")
            return
        condition: dict[str, Any] = {
            "resourceType": "Condition", "subject": self.subject(), "code": code,
            "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}]}
        verification = COMMON["diagnosis_verification"].get(segment.get(6).upper())
        if verification:
            condition["verificationStatus"] = {"coding": [{"system": CONDITION_VERIFICATION, "code": verification}]}
        recorded = self.types.date_time(segment.get(5), "DG1-5")
        if recorded:
            condition["recordedDate"] = recorded
        asserter = self.practitioner(segment.rep(16), "DG1-16")
        if asserter:
            condition["asserter"] = {"reference": asserter}
        self.context(condition)
        identifiers = [i for i in (self.types.ei(segment.rep(20), "diagnosis"),) if i]
        if not identifiers and self.encounter is not None and segment.get(1):
            visit = (self.encounter.resource.get("identifier") or [{}])[0].get("value")
            if visit:
                identifiers = [{"system": self.types.local_system("diagnosis"), "value": f"{visit}-{segment.get(1)}"}]
        if identifiers:
            condition["identifier"] = identifiers
        ref = self.keyed(condition, identifiers, conditional=self.family != "referral", merge=True)
        self.supporting.append(ref)
        self.last = self.bundle.resource(ref)
        if self.encounter is not None:
            diagnosis: dict[str, Any] = {"condition": {"reference": ref}}
            rank = fhir_integer(segment.get(15), 1)
            if rank:
                diagnosis["rank"] = rank
            self.encounter.resource.setdefault("diagnosis", []).append(diagnosis)

    def on_PRB(self, segment: Segment) -> None:
        code = self.types.codeable(segment.rep(3), "diagnosis")
        if code is None:
            self.warn("PRB: a problem without a code is not kept")
            return
        condition: dict[str, Any] = {
            "resourceType": "Condition", "subject": self.subject(), "code": code,
            "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "problem-list-item"}]}]}
        deleted = self.trigger == "PC3" or segment.get(1).upper() == "DE"
        if deleted:
            condition["verificationStatus"] = {"coding": [{"system": CONDITION_VERIFICATION, "code": "entered-in-error"}]}
        else:
            resolved = self.types.date_time(segment.get(10), "PRB-10")
            state = COMMON["problem_clinical_status"].get(segment.get(14).upper(), "active")
            if resolved:
                condition["abatementDateTime"] = resolved
                state = state if state in ("inactive", "resolved") else "resolved"
            condition["clinicalStatus"] = {"coding": [{"system": CONDITION_CLINICAL, "code": state}]}
            verification = COMMON["problem_verification"].get(segment.get(13).upper())
            if verification:
                condition["verificationStatus"] = {"coding": [{"system": CONDITION_VERIFICATION, "code": verification}]}
        onset = self.types.date_time(segment.get(16), "PRB-16")
        if onset:
            condition["onsetDateTime"] = onset
        recorded = self.types.date_time(segment.get(7), "PRB-7")
        if recorded:
            condition["recordedDate"] = recorded
        identifiers = [i for i in (self.types.ei(segment.rep(4), "problem"),) if i]
        if identifiers:
            condition["identifier"] = identifiers
        self.last = self.bundle.resource(self.keyed(condition, identifiers, merge=True))

    def on_PR1(self, segment: Segment) -> None:
        code = self.types.codeable(segment.rep(3), "procedure", text=segment.get(4))
        if code is None:
            self.warn("PR1: a procedure without a code or description is not kept")
            return
        procedure: dict[str, Any] = {"resourceType": "Procedure", "status": "completed", "subject": self.subject(),
                                     "code": code}
        performed = self.types.date_time(segment.get(5), "PR1-5")
        if performed:
            procedure["performedDateTime"] = performed
        performers = []
        for number, function in ((8, "anesthesiologist"), (11, "surgeon"), (12, "practitioner")):
            for rep in segment.reps(number):
                who = self.practitioner(rep, f"PR1-{number}")
                if who:
                    performers.append({"function": {"text": function}, "actor": {"reference": who}})
        if performers:
            procedure["performer"] = performers
        reason = self.types.codeable(segment.rep(15), "diagnosis")
        if reason:
            procedure["reasonCode"] = [reason]
        self.context(procedure)
        identifiers = [i for i in (self.types.ei(segment.rep(19), "procedure"),) if i]
        if identifiers:
            procedure["identifier"] = identifiers
        ref = self.keyed(procedure, identifiers, conditional=self.family != "referral", merge=True)
        self.supporting.append(ref)
        self.last = self.bundle.resource(ref)

    def on_IN1(self, segment: Segment) -> None:
        payor = self.organization(Rep([[segment.get(4) or segment.get(2, 2)], [""], [segment.get(3)], [""], [""],
                                       segment.rep(3).subs(4) or [""]]), "IN1-3/4",
                                  address=segment.rep(5), telecom=segment.rep(7))
        coverage: dict[str, Any] = {"resourceType": "Coverage", "status": "active", "beneficiary": self.subject(),
                                    "payor": [{"reference": payor}] if payor else [self.subject()]}
        if not payor:
            self.warn("IN1: no insurance company named (IN1-3/IN1-4): the patient is recorded as the payor")
        plan = segment.rep(15)
        if plan:
            coverage["type"] = self.types.codeable(plan) if plan.c(3) else self.types.simple_code(plan.c(1), "0086",
                                                                                                  display=plan.c(2))
        relationship = COMMON["subscriber_relationship"].get(segment.get(17).upper())
        if relationship:
            coverage["relationship"] = {"coding": [{"system": SUBSCRIBER, "code": relationship}]}
        period = self.types.period(segment.get(12), segment.get(13), "IN1-12/13")
        if period:
            coverage["period"] = {k: v[:10] if len(v) > 10 else v for k, v in period.items()}
        if segment.get(8):
            group: dict[str, Any] = {"type": {"coding": [{"system": COVERAGE_CLASS, "code": "group"}]},
                                     "value": segment.get(8)}
            if segment.get(9):
                group["name"] = segment.get(9)
            coverage["class"] = [group]
        identifiers = []
        if segment.get(36):
            identifiers = [{"system": self.types.local_system("policy"), "value": segment.get(36)}]
            coverage["identifier"] = identifiers
            coverage["subscriberId"] = segment.get(36)
        self.last = self.bundle.resource(self.keyed(coverage, identifiers, conditional=self.family != "referral",
                                                    merge=True))

    # --- orders, results -----------------------------------------------------------------------

    def _order_status(self, segment: Segment | None) -> str | None:
        if segment is None:
            return None
        return COMMON["order_status"].get(segment.get(5).upper()) or COMMON["order_control"].get(segment.get(1).upper())

    def on_ORC(self, segment: Segment) -> None:
        self.order = Order(
            segment=segment,
            placer=self.types.ei(segment.rep(2), "order", "PLAC"),
            filler=self.types.ei(segment.rep(3), "order", "FILL"),
            status=self._order_status(segment),
            requester=self.practitioner(segment.rep(12), "ORC-12"),
            authored=self.types.date_time(segment.get(9), "ORC-9"),
        )
        self.request = self.report = self.medication = self.immunization = None

    def _order_identifiers(self, segment: Segment | None = None) -> list[dict[str, Any]]:
        """Placer and filler order numbers: of the OBR when it has them, else of its ORC."""
        placer = self.types.ei(segment.rep(2), "order", "PLAC") if segment is not None else None
        filler = self.types.ei(segment.rep(3), "order", "FILL") if segment is not None else None
        if self.order is not None:
            placer = placer or self.order.placer
            filler = filler or self.order.filler
        return [i for i in (placer, filler) if i]

    def on_OBR(self, segment: Segment) -> None:
        if self.family in ("result", "referral"):
            self._report(segment)
        else:
            self._service_request(segment)

    def _service_request(self, segment: Segment) -> None:
        request: dict[str, Any] = {"resourceType": "ServiceRequest",
                                   "status": self._order_status(self.order.segment if self.order else None) or "active",
                                   "intent": "order", "subject": self.subject()}
        code = self.types.codeable(segment.rep(4), "observation")
        if code:
            request["code"] = code
        priority = COMMON["priority"].get(segment.get(5).upper())
        if priority:
            request["priority"] = priority
        identifiers = self._order_identifiers(segment)
        if identifiers:
            request["identifier"] = identifiers
        when = self.types.date_time(segment.get(6) or segment.get(7), "OBR-6")
        if when:
            request["occurrenceDateTime"] = when
        if self.order and self.order.authored:
            request["authoredOn"] = self.order.authored
        requester = (self.order.requester if self.order else None) or self.practitioner(segment.rep(16), "OBR-16")
        if requester:
            request["requester"] = {"reference": requester}
        reasons = [r for r in (self.types.codeable(rep, "diagnosis") for rep in segment.reps(31)) if r]
        if reasons:
            request["reasonCode"] = reasons
        if self.specimen is not None:
            request["specimen"] = [{"reference": self.specimen.ref}]
        self.context(request)
        ref = self.keyed(request, identifiers[:1])
        self.request = Held(ref, request)
        if self.order is not None:
            self.order.request = self.request
        self.report = None
        self.last = request

    def _report(self, segment: Segment) -> None:
        if self.message_type != "OUL":  # OUL sends the specimen before its orders; ORU after its results
            self.specimen = None
        self.report_observations = []
        status = COMMON["report_status"].get(segment.get(25).upper(), "unknown")
        code = self.types.codeable(segment.rep(4), "observation")
        if code is None:
            self.warn("OBR-4: a report without a service identifier is recorded with code text 'report'")
            code = {"text": "report"}
        report: dict[str, Any] = {"resourceType": "DiagnosticReport", "status": status, "code": code,
                                  "subject": self.subject()}
        section = segment.get(24)
        if section:
            report["category"] = [self.types.simple_code(section, "0074")]
        identifiers = self._order_identifiers(segment)
        if identifiers:
            report["identifier"] = identifiers
        effective = self.types.date_time(segment.get(7), "OBR-7")
        if effective:
            report["effectiveDateTime"] = effective
        issued = self.types.instant(segment.get(22), "OBR-22")
        if issued:
            report["issued"] = issued
        if self.specimen is not None:
            report["specimen"] = [{"reference": self.specimen.ref}]
        self.context(report)
        filler = next((i for i in identifiers if i["type"]["coding"][0]["code"] == "FILL"), None)
        ref = self.keyed(report, [filler] if filler else [], conditional=self.family == "result")
        self.report = Held(ref, report)
        self.supporting.append(ref)
        self.request = None
        self.last = report

    def on_SPM(self, segment: Segment) -> None:
        specimen: dict[str, Any] = {"resourceType": "Specimen", "subject": self.subject()}
        identifiers = []
        for component, kind in ((1, "PLAC"), (2, "FILL")):
            subs = segment.rep(2).subs(component)
            if subs and subs[0].strip():
                identifier = self.types.ei(Rep([[s] for s in subs]), "specimen", kind)
                if identifier:
                    identifiers.append(identifier)
        if identifiers:
            specimen["identifier"] = identifiers
        kind = self.types.codeable(segment.rep(4), table="0487")
        if kind:
            specimen["type"] = kind
        collection: dict[str, Any] = {}
        collected = self.types.date_time(segment.get(17, 1), "SPM-17")
        if collected:
            collection["collectedDateTime"] = collected
        site = self.types.codeable(segment.rep(8), table="0163")
        if site:
            collection["bodySite"] = site
        if collection:
            specimen["collection"] = collection
        received = self.types.date_time(segment.get(18), "SPM-18")
        if received and "T" in received:
            specimen["receivedTime"] = received
        self.specimen = Held(self.bundle.post(specimen), specimen)
        for held in (self.report, self.request):
            if held is not None:
                held.resource.setdefault("specimen", []).append({"reference": self.specimen.ref})
        for observation in self.report_observations:  # ORU: the specimen follows the results it was taken for
            observation.setdefault("specimen", {"reference": self.specimen.ref})
        self.last = specimen

    def on_OBX(self, segment: Segment) -> None:
        value_type = segment.get(2).upper()
        if self.family == "document" and self.document is not None:
            self._document_content(segment, value_type)
            return
        if value_type in ("ED", "RP"):
            self._attachment_document(segment, value_type)
            return
        self._observation(segment, value_type)

    def _value(self, observation: dict[str, Any], segment: Segment, value_type: str) -> None:
        reps = segment.reps(5)
        if not reps:
            return
        if len(reps) > 1 and value_type not in TEXT_TYPES:
            self.warn(f"OBX-5 (segment {segment.sequence}): {len(reps)} repetitions of a {value_type} value; "
                      f"the first is kept")
        first = reps[0]
        if value_type == "NM":
            quantity = self.types.quantity(first.c(1), segment.rep(6))
            if quantity is not None:
                observation["valueQuantity"] = quantity
                return
            text = first.c(1)
            for comparator in ("<=", ">=", "<", ">"):
                number = fhir_number(text[len(comparator):]) if text.startswith(comparator) else None
                if number is not None:
                    observation["valueQuantity"] = {"value": number, "comparator": comparator,
                                                    **self.types.unit(segment.rep(6))}
                    return
            self.warn(f"OBX-5 (segment {segment.sequence}): '{text}' is not a number; kept as text")
            observation["valueString"] = text
        elif value_type == "SN":
            comparator, low, separator, high = first.c(1), fhir_number(first.c(2)), first.c(3), fhir_number(first.c(4))
            unit = self.types.unit(segment.rep(6))
            if low is not None and separator in ("-", "") and high is not None and separator == "-":
                observation["valueRange"] = {"low": {"value": low, **unit}, "high": {"value": high, **unit}}
            elif low is not None and separator in (":", "/") and high is not None:
                observation["valueRatio"] = {"numerator": {"value": low}, "denominator": {"value": high}}
            elif low is not None:
                quantity: dict[str, Any] = {"value": low, **unit}
                if comparator in ("<", ">", "<=", ">="):
                    quantity["comparator"] = comparator
                observation["valueQuantity"] = quantity
            else:
                observation["valueString"] = first.text("")
        elif value_type in CODED_TYPES:
            concept = self.types.codeable(first)
            if concept:
                observation["valueCodeableConcept"] = concept
        elif value_type in DATE_TYPES:
            when = self.types.date_time(first.c(1), f"OBX-5 (segment {segment.sequence})")
            if when:
                observation["valueDateTime"] = when
        elif value_type == "TM":
            observation["valueString"] = first.c(1)
        else:
            separator = "" if value_type in ("ST", "TX", "FT") else " "
            text = "\n".join(rep.text(separator) if len(rep.components) == 1 else "^".join(
                s[0] if s else "" for s in rep.components).strip("^") for rep in reps).strip()
            if text:
                observation["valueString"] = text

    def _observation(self, segment: Segment, value_type: str) -> None:
        code = self.types.codeable(segment.rep(3), "observation" if self.family == "result" else None)
        if code is None:
            self.warn("OBX-3: an observation without an identifier is recorded with code text 'observation'")
            code = {"text": "observation"}
        status = COMMON["observation_status"].get(segment.get(11).upper(), "final" if segment.reps(5) else "unknown")
        observation: dict[str, Any] = {"resourceType": "Observation", "status": status, "code": code,
                                       "subject": self.subject()}
        if self.family in ("result", "referral") and self.report is not None:
            observation["category"] = [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory"}]}]
        self._value(observation, segment, value_type)
        if segment.get(7):
            observation["referenceRange"] = [self._range(segment.get(7), segment.rep(6))]
        interpretations = []
        for rep in segment.reps(8):
            code_value = rep.c(1)
            system = INTERPRETATION if code_value.upper() in COMMON["interpretation"] else \
                "http://terminology.hl7.org/CodeSystem/v2-0078"
            interpretations.append({"coding": [{"system": system, "code": code_value.upper() if system == INTERPRETATION
                                                else code_value}]})
        if interpretations:
            observation["interpretation"] = interpretations
        effective = self.types.date_time(segment.get(14), "OBX-14")
        if not effective and self.report is not None:
            effective = self.report.resource.get("effectiveDateTime")
        if effective:
            observation["effectiveDateTime"] = effective
        performers = [p for p in (self.practitioner(rep, "OBX-16") for rep in segment.reps(16)) if p]
        performing = self.organization(segment.rep(23), "OBX-23")
        if performing:
            performers.append(performing)
        if performers:
            observation["performer"] = [{"reference": p} for p in performers]
        method = self.types.codeable(segment.rep(17))
        if method:
            observation["method"] = method
        if self.specimen is not None and self.family == "result":
            observation["specimen"] = {"reference": self.specimen.ref}
        request = self.request or (self.order.request if self.order else None)
        if request is not None and request.resource["resourceType"] == "ServiceRequest":
            observation["basedOn"] = [{"reference": request.ref}]
        if self.immunization is not None:
            observation["partOf"] = [{"reference": self.immunization.ref}]
        self.context(observation)
        identifiers = self._observation_identifiers(segment)
        if identifiers:
            observation["identifier"] = identifiers
        ref = self.keyed(observation, identifiers, conditional=self.family != "referral", synthetic=True)
        self.last = observation
        if self.report is not None:
            self.report_observations.append(observation)
        if self.report is not None:
            self.report.resource.setdefault("result", []).append({"reference": ref})
        elif request is not None and request.resource["resourceType"] == "ServiceRequest":
            request.resource.setdefault("supportingInfo", []).append({"reference": ref})
        elif self.medication is not None and self.medication.resource["resourceType"] == "MedicationRequest":
            self.medication.resource.setdefault("supportingInformation", []).append({"reference": ref})
        if self.family == "referral":
            self.supporting.append(ref)

    def _observation_identifiers(self, segment: Segment) -> list[dict[str, Any]]:
        """Results: the filler order number and the OBX set id (and sub-id); in a visit's
        messages the visit number and the set id; else none (the observation is created)."""
        set_id = segment.get(1)
        if not set_id:
            return []
        suffix = f"-{set_id}" + (f"-{segment.get(4)}" if segment.get(4) else "")
        base = None
        if self.report is not None:
            filler = next((i for i in self.report.resource.get("identifier") or []
                           if i["type"]["coding"][0]["code"] == "FILL"), None)
            base = filler["value"] if filler else None
        elif self.family in ("adt", "account") and self.encounter is not None:
            visit = (self.encounter.resource.get("identifier") or [{}])[0].get("value")
            base = f"visit-{visit}" if visit else None
        if base is None:
            return []
        return [{"system": self.types.local_system("observation"), "value": base + suffix}]

    def _range(self, text: str, unit: Rep) -> dict[str, Any]:
        result: dict[str, Any] = {"text": text}
        low, _, high = text.partition("-")
        units = self.types.unit(unit)
        low_number, high_number = fhir_number(low), fhir_number(high)
        if low_number is not None and high_number is not None:
            result["low"] = {"value": low_number, **units}
            result["high"] = {"value": high_number, **units}
        return result

    def _attachment(self, segment: Segment, value_type: str) -> dict[str, Any] | None:
        rep = segment.rep(5)
        if value_type == "RP":
            pointer = rep.c(1)
            if not pointer:
                return None
            attachment: dict[str, Any] = {"url": pointer} if "://" in pointer else {"title": pointer}
            kind = "/".join(p for p in (rep.c(3).lower(), rep.c(4).lower()) if p)
            if "/" in kind:
                attachment["contentType"] = kind
            return attachment
        # ED: source application^type of data^data subtype^encoding^data
        data, encoding = rep.c(5), rep.c(4).upper()
        media = f"{(rep.c(2) or 'application').lower()}/{(rep.c(3) or 'octet-stream').lower()}"
        if "/" in rep.c(3):
            media = rep.c(3).lower()
        if not data:
            self.warn(f"OBX-5 (segment {segment.sequence}): an embedded document with no data is recorded without content")
            return {"contentType": media, "title": "embedded document sent without data"}
        try:
            if encoding in ("BASE64", "B64"):
                raw = base64.b64decode("".join(data.split()), validate=True)
            elif encoding == "HEX":
                raw = bytes.fromhex(data)
            else:
                raw = data.encode("utf-8")
        except (binascii.Error, ValueError):
            raise segment.error(f"the embedded document is not valid {encoding}", 5, hl7_error="102") from None
        return {"contentType": media, "data": base64.b64encode(raw).decode("ascii")}

    def _attachment_document(self, segment: Segment, value_type: str) -> None:
        attachment = self._attachment(segment, value_type)
        if attachment is None:
            return
        document: dict[str, Any] = {"resourceType": "DocumentReference", "status": "current", "subject": self.subject(),
                                    "content": [{"attachment": attachment}]}
        kind = self.types.codeable(segment.rep(3), "observation")
        if kind:
            document["type"] = kind
        when = self.types.instant(segment.get(14), "OBX-14")
        if when:
            document["date"] = when
        context: dict[str, Any] = {}
        if self.encounter is not None:
            context["encounter"] = [{"reference": self.encounter.ref}]
        related = self.report or self.request
        if related is not None:
            context["related"] = [{"reference": related.ref}]
        if context:
            document["context"] = context
        ref = self.bundle.post(document)
        self.last = document
        if self.report is not None:
            form = {k: v for k, v in attachment.items() if k in ("contentType", "url")}
            self.report.resource.setdefault("presentedForm", []).append({**form, "title": "see DocumentReference"})
        if self.family == "referral":
            self.supporting.append(ref)

    def on_TQ1(self, segment: Segment) -> None:
        start = self.types.date_time(segment.get(7), "TQ1-7")
        end = self.types.date_time(segment.get(8), "TQ1-8")
        priority = COMMON["priority"].get(segment.get(9).upper())
        if self.appointment is not None and start:
            self.appointment_times.setdefault("tq1", (start, end))
            return
        target = self.medication or self.request
        if target is None:
            return
        resource = target.resource
        if resource["resourceType"] == "ServiceRequest":
            if start and end:
                resource.pop("occurrenceDateTime", None)
                resource["occurrencePeriod"] = {"start": start, "end": end}
            elif start and "occurrenceDateTime" not in resource:
                resource["occurrenceDateTime"] = start
            if priority:
                resource["priority"] = priority
        elif resource["resourceType"] == "MedicationRequest":
            dosage = resource.setdefault("dosageInstruction", [{}])[0]
            timing: dict[str, Any] = dosage.setdefault("timing", {})
            pattern = segment.rep(3)
            if pattern:
                timing["code"] = {"text": pattern.text(" ")}
            if start:
                timing.setdefault("repeat", {})["boundsPeriod"] = {"start": start, **({"end": end} if end else {})}
            if not timing:
                dosage.pop("timing")
            if priority:
                resource["priority"] = priority

    # --- medication --------------------------------------------------------------------------------

    def _medication_request(self, segment: Segment) -> Held:
        if self.order is not None and self.order.medication is not None:
            return self.order.medication
        request: dict[str, Any] = {"resourceType": "MedicationRequest",
                                   "status": self._order_status(self.order.segment if self.order else None) or "active",
                                   "intent": "order", "subject": self.subject(),
                                   "medicationCodeableConcept": {"text": "medication"}}
        identifiers = self._order_identifiers()
        if identifiers:
            request["identifier"] = identifiers
        if self.order is not None and self.order.authored:
            request["authoredOn"] = self.order.authored
        if self.order is not None and self.order.requester:
            request["requester"] = {"reference": self.order.requester}
        self.context(request)
        held = Held(self.keyed(request, identifiers[:1]), request)
        if self.order is not None:
            self.order.medication = held
        self.medication = held
        return held

    def _medication_details(self, request: dict[str, Any], segment: Segment, code: int, minimum: int, units: int,
                            instructions: list[int], amount: int, amount_units: int, refills: int) -> None:
        medication = self.types.codeable(segment.rep(code), "medication")
        if medication:
            request["medicationCodeableConcept"] = medication
        elif request["medicationCodeableConcept"] == {"text": "medication"}:
            self.warn(f"{segment.name}-{code}: a medication order without a medication code is recorded as 'medication'")
        dosage: dict[str, Any] = (request.get("dosageInstruction") or [{}])[0]
        texts = [rep.text() for number in instructions for rep in segment.reps(number)]
        if texts:
            dosage["text"] = "; ".join(texts)
        dose = self.types.quantity(segment.get(minimum), segment.rep(units))
        if dose:
            dosage["doseAndRate"] = [{"doseQuantity": dose}]
        if dosage:
            request["dosageInstruction"] = [dosage]
        dispense: dict[str, Any] = {}
        quantity = self.types.quantity(segment.get(amount), segment.rep(amount_units))
        if quantity:
            dispense["quantity"] = quantity
        repeats = fhir_integer(segment.get(refills))
        if repeats is not None:
            dispense["numberOfRepeatsAllowed"] = repeats
        if dispense:
            request["dispenseRequest"] = {**request.get("dispenseRequest", {}), **dispense}

    def on_RXO(self, segment: Segment) -> None:
        held = self._medication_request(segment)
        self._medication_details(held.resource, segment, 1, 2, 4, [6, 7], 11, 12, 13)
        self.last = held.resource

    def on_RXE(self, segment: Segment) -> None:
        held = self._medication_request(segment)
        self._medication_details(held.resource, segment, 2, 3, 5, [7, 21], 10, 11, 12)
        number = segment.get(15)
        if number and not any(i.get("value") == number for i in held.resource.get("identifier") or []):
            held.resource.setdefault("identifier", []).append(
                {"system": self.types.local_system("prescription"), "value": number})
        self.last = held.resource

    def on_RXD(self, segment: Segment) -> None:
        dispense: dict[str, Any] = {"resourceType": "MedicationDispense", "status": "completed", "subject": self.subject(),
                                    "medicationCodeableConcept": self.types.codeable(segment.rep(2), "medication")
                                    or {"text": "medication"}}
        quantity = self.types.quantity(segment.get(4), segment.rep(5))
        if quantity:
            dispense["quantity"] = quantity
        handed = self.types.date_time(segment.get(3), "RXD-3")
        if handed:
            dispense["whenHandedOver"] = handed
        if segment.get(7):
            dispense["identifier"] = [{"system": self.types.local_system("prescription"), "value": segment.get(7)}]
        instructions = [rep.text() for rep in segment.reps(9)]
        if instructions:
            dispense["dosageInstruction"] = [{"text": "; ".join(instructions)}]
        dispenser = self.practitioner(segment.rep(10), "RXD-10")
        if dispenser:
            dispense["performer"] = [{"actor": {"reference": dispenser}}]
        request = self.order.medication if self.order else self.medication
        if request is not None:
            dispense["authorizingPrescription"] = [{"reference": request.ref}]
        self.context(dispense, "context")
        held = Held(self.bundle.post(dispense), dispense)
        self.medication = held
        self.last = dispense

    def on_RXR(self, segment: Segment) -> None:
        route = self.types.codeable(segment.rep(1), table="0162")
        site = self.types.codeable(segment.rep(2), table="0163")
        if self.immunization is not None and self.last is self.immunization.resource:
            if route:
                self.immunization.resource["route"] = route
            if site:
                self.immunization.resource["site"] = site
            return
        target = self.medication
        if target is None or not (route or site):
            return
        key = "dosageInstruction"
        dosage = (target.resource.get(key) or [{}])[0]
        if route:
            dosage["route"] = route
        if site:
            dosage["site"] = site
        target.resource[key] = [dosage, *(target.resource.get(key) or [])[1:]]

    def on_RXA(self, segment: Segment) -> None:
        vaccine = self.types.codeable(segment.rep(5), "vaccine")
        if vaccine is None:
            self.warn("RXA-5: an immunisation without a vaccine code is recorded as 'vaccine'")
            vaccine = {"text": "vaccine"}
        completion = segment.get(20).upper()
        status = COMMON["immunization_completion"].get(completion, "completed")
        if segment.get(21).upper() == "D":
            status = "entered-in-error"
        immunization: dict[str, Any] = {"resourceType": "Immunization", "status": status, "vaccineCode": vaccine,
                                        "patient": self.subject()}
        given = self.types.date_time(segment.get(3), "RXA-3")
        if given:
            immunization["occurrenceDateTime"] = given
        else:
            immunization["occurrenceString"] = "not recorded"
        amount = segment.get(6)
        if amount and amount != "999":
            dose = self.types.quantity(amount, segment.rep(7))
            if dose:
                immunization["doseQuantity"] = dose
        source = segment.get(9)
        if source:
            immunization["primarySource"] = source == "00"
            if source != "00":
                immunization["reportOrigin"] = self.types.codeable(segment.rep(9)) or {"text": source}
        performers = []
        for rep in segment.reps(10):
            who = self.practitioner(rep, "RXA-10")
            if who:
                performers.append({"function": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0443",
                                                             "code": "AP"}]}, "actor": {"reference": who}})
        if performers:
            immunization["performer"] = performers
        place = self.types.location_text(segment.rep(27)) or segment.get(11, 4)
        if place:
            immunization["location"] = {"display": place}
        if segment.get(15):
            immunization["lotNumber"] = segment.get(15)
        expires = self.types.date(segment.get(16), "RXA-16")
        if expires:
            immunization["expirationDate"] = expires
        maker = segment.rep(17)
        if maker:
            coding = self.types.coding(maker.c(1), maker.c(2), maker.c(3) or "MVX")
            identifier = {"system": coding["system"], "value": coding["code"]} if coding else None
            organization: dict[str, Any] = {"resourceType": "Organization", "name": maker.c(2) or maker.c(1)}
            if identifier:
                organization["identifier"] = [identifier]
            immunization["manufacturer"] = {"reference": self.bundle.create_once(organization, identifier,
                                                                                 f"manufacturer:{maker.text()}")}
        reasons = [r for r in (self.types.codeable(rep) for rep in segment.reps(18)) if r]
        if reasons and status == "not-done":
            immunization["statusReason"] = reasons[0]
        if completion == "PA":
            immunization["isSubpotent"] = True
        self.context(immunization)
        identifiers = self._order_identifiers()
        if identifiers:
            immunization["identifier"] = identifiers
        held = Held(self.keyed(immunization, identifiers[:1]), immunization)
        self.immunization = held
        self.last = immunization

    # --- documents ---------------------------------------------------------------------------------

    def on_TXA(self, segment: Segment) -> None:
        if self.document is not None:  # a second document in one message: the first is complete
            self._finish_document()
        kind = segment.rep(2)
        document: dict[str, Any] = {"resourceType": "DocumentReference", "subject": self.subject(), "content": []}
        availability = COMMON["document_availability"].get(segment.get(19).upper())
        document["status"] = "entered-in-error" if self.event.get("document") == "entered-in-error" else (
            availability or "current")
        doc_status = COMMON["document_status"].get(segment.get(17).upper())
        if doc_status:
            document["docStatus"] = doc_status
        concept = (self.types.codeable(kind) if kind.c(3) else self.types.simple_code(kind.c(1), "0270", display=kind.c(2)))
        if concept:
            document["type"] = concept
        master = self.types.ei(segment.rep(12), "document")
        if master:
            document["masterIdentifier"] = master
        others = [i for i in (self.types.ei(segment.rep(16), "document-file"),) if i]
        if others:
            document["identifier"] = others
        when = self.types.instant(segment.get(4) or segment.get(6) or segment.get(8), "TXA-4")
        if when:
            document["date"] = when
        authors = [a for a in (self.practitioner(rep, "TXA-5") for rep in segment.reps(5)) if a]
        if authors:
            document["author"] = [{"reference": a} for a in authors]
        authenticator = next((a for a in (self.practitioner(rep, f"TXA-{n}") for n in (22, 10) for rep in segment.reps(n))
                              if a), None)
        if authenticator:
            document["authenticator"] = {"reference": authenticator}
        parent = self.types.ei(segment.rep(13), "document")
        if parent and self.event.get("document") == "replaces":
            document["relatesTo"] = [{"code": "replaces", "target": {"type": "DocumentReference", "identifier": parent}}]
        context: dict[str, Any] = {}
        if self.encounter is not None:
            context["encounter"] = [{"reference": self.encounter.ref}]
        related = [h.ref for h in (self.request,) if h is not None]
        if related:
            context["related"] = [{"reference": r} for r in related]
        if context:
            document["context"] = context
        self.document_title = segment.get(16) or kind.c(2) or kind.c(1)
        self.document = Held(self.keyed(document, [master] if master else []), document)
        self.last = document

    def _document_content(self, segment: Segment, value_type: str) -> None:
        if value_type in ("ED", "RP"):
            attachment = self._attachment(segment, value_type)
            if attachment:
                self.document_attachments.append(attachment)
            return
        text = "\n".join(rep.text(" ") for rep in segment.reps(5)).strip()
        if text:
            self.document_text.append(text)

    def _finish_document(self) -> None:
        assert self.document is not None
        document, title = self.document.resource, self.document_title
        content = []
        if self.document_text:
            attachment: dict[str, Any] = {"contentType": "text/plain; charset=utf-8",
                                          "data": base64.b64encode("\n".join(self.document_text).encode("utf-8")).decode()}
            if title:
                attachment["title"] = title
            content.append({"attachment": attachment})
        content += [{"attachment": a} for a in self.document_attachments]
        if not content:
            content = [{"attachment": {"title": (f"{title}: " if title else "") +
                                       "notification only; the document's content was not sent"}}]
        document["content"] = content
        self.document, self.document_text, self.document_attachments = None, [], []

    # --- scheduling --------------------------------------------------------------------------------

    def on_SCH(self, segment: Segment) -> None:
        self.appointment_times = {}
        status = self.event.get("appointment", "booked")
        filler_status = COMMON["appointment_filler_status"].get(segment.get(25).upper())
        if filler_status and status == "booked":
            status = filler_status
        appointment: dict[str, Any] = {"resourceType": "Appointment", "status": status, "participant": []}
        identifiers = [i for i in (self.types.ei(segment.rep(2), "appointment", "FILL"),
                                   self.types.ei(segment.rep(1), "appointment", "PLAC")) if i]
        if identifiers:
            appointment["identifier"] = identifiers
        reason = self.types.codeable(segment.rep(7), table="0276")
        if reason:
            appointment["reasonCode"] = [reason]
        kind = self.types.codeable(segment.rep(8), table="0277")
        if kind:
            appointment["appointmentType"] = kind
        duration = fhir_number(segment.get(9))
        unit = segment.get(10).upper()
        if isinstance(duration, int | float) and duration > 0:
            minutes = duration * {"S": 1 / 60, "H": 60, "HR": 60, "HOURS": 60, "D": 1440}.get(unit, 1)
            if 1 <= minutes <= MAX_INTEGER:
                appointment["minutesDuration"] = int(minutes)
        timing = segment.rep(11)
        start = self.types.date_time(timing.c(4), "SCH-11.4")
        end = self.types.date_time(timing.c(5), "SCH-11.5")
        if start:
            self.appointment_times["sch"] = (start, end)
        self.appointment = Held(self.keyed(appointment, identifiers[:1]), appointment)
        self.appointments.append((self.appointment, self.appointment_times))
        self.last = appointment

    def _resource_time(self, segment: Segment, start_field: int, offset_field: int, duration_field: int) -> None:
        if self.appointment is None:
            return
        start = self.types.date_time(segment.get(start_field), f"{segment.name}-{start_field}")
        if start and "T" in start and "resource" not in self.appointment_times:
            duration = fhir_number(segment.get(duration_field))
            units = segment.get(duration_field + 1).upper()
            minutes = None
            if isinstance(duration, int | float) and 0 < duration <= MAX_INTEGER:
                minutes = duration * {"S": 1 / 60, "SEC": 1 / 60, "H": 60, "HR": 60, "D": 1440}.get(units, 1)
            self.appointment_times["resource"] = (start, minutes)

    def on_AIS(self, segment: Segment) -> None:
        if self.appointment is None:
            return
        service = self.types.codeable(segment.rep(3))
        if service:
            self.appointment.resource.setdefault("serviceType", []).append(service)
        self._resource_time(segment, 4, 5, 7)
        self.last = self.appointment.resource

    def _participant(self, actor: dict[str, Any]) -> None:
        if self.appointment is not None:
            self.appointment.resource["participant"].append({"actor": actor, "status": "accepted"})
            self.last = self.appointment.resource

    def on_AIG(self, segment: Segment) -> None:
        name = segment.rep(3).c(2) or segment.rep(3).c(1) or segment.rep(4).text()
        if name:
            self._participant({"display": name})
        self._resource_time(segment, 8, 9, 11)

    def on_AIL(self, segment: Segment) -> None:
        place = self.types.location_text(segment.rep(3))
        if place:
            self._participant({"display": place})
        self._resource_time(segment, 6, 7, 9)

    def on_AIP(self, segment: Segment) -> None:
        for rep in segment.reps(3):
            who = self.practitioner(rep, "AIP-3")
            if who:
                self._participant({"reference": who})
        self._resource_time(segment, 6, 7, 9)

    def _finish_appointment(self, appointment: dict[str, Any], times: dict[str, Any]) -> None:
        """Start and end from SCH-11, else TQ1, else the first resource's start and duration
        (FHIR wants both or neither); the patient as the first participant."""
        start, end = times.get("sch", (None, None))
        tq1 = times.get("tq1")
        resource_time = times.get("resource")
        if tq1 and not start:
            start, end = tq1
        minutes = appointment.get("minutesDuration")
        if resource_time and not start:
            start, resource_minutes = resource_time
            minutes = minutes or resource_minutes
        if start and "T" in start and (not end or "T" not in end
                                       or datetime.fromisoformat(end) < datetime.fromisoformat(start)):
            end = self.types.plus_minutes(start, minutes) if minutes else None
        if start and end and "T" in start and "T" in end:
            appointment["start"], appointment["end"] = start, end
        elif start:
            appointment["requestedPeriod"] = [{"start": start}]
            self.warn("SCH: the appointment's start is known but not its end or duration: recorded as the requested time")
        if self.patient is not None and not any(p["actor"].get("reference") == self.patient.ref
                                                for p in appointment["participant"]):
            appointment["participant"].insert(0, {"actor": {"reference": self.patient.ref}, "status": "accepted"})

    # --- notes ---------------------------------------------------------------------------------------

    def on_NTE(self, segment: Segment) -> None:
        self.note(self.last, self.types.narrative_text(segment, 3))

    # --- referrals -------------------------------------------------------------------------------------

    def on_RF1(self, segment: Segment) -> None:
        self.referral = segment

    def on_PRD(self, segment: Segment) -> None:
        role = segment.get(1).upper()
        name = next((n for n in (self.types.xpn(rep, "PRD-2") for rep in segment.reps(2)) if n), None)
        identifiers = []
        for rep in segment.reps(7):
            if rep.c(1):
                identifiers.append({"system": self.types.local_system("practitioner", rep.c(2)), "value": rep.c(1)})
        person = None
        if name or identifiers:
            practitioner: dict[str, Any] = {"resourceType": "Practitioner"}
            if identifiers:
                practitioner["identifier"] = identifiers[:1]
            if name:
                practitioner["name"] = [name]
            address = self.types.address(segment.rep(3))
            if address:
                practitioner["address"] = [address]
            telecom = [p for p in (self.types.telecom(rep) for rep in segment.reps(5)) if p]
            if telecom:
                practitioner["telecom"] = telecom
            person = self.bundle.create_once(practitioner, identifiers[0] if identifiers else None,
                                             None if identifiers else f"PRD:{segment.rep(2).text()}")
        organization = None
        organization_name = segment.get(10) or segment.get(4, 4)
        if organization_name:
            organization = self.organization(segment.rep(10) if segment.get(10) else Rep([[organization_name]]), "PRD-10",
                                             address=segment.rep(11), telecom=segment.rep(13))
        if role:
            self.providers.setdefault(role, (person, organization))

    def _finish_referral(self) -> None:
        segment = self.referral
        if segment is None:
            self.warn("REF: no RF1 segment, so no referral request is recorded (only the clinical content)")
            return
        status = {"P": "active", "A": "active", "R": "revoked", "E": "revoked", "C": "completed"}.get(
            segment.get(1).upper(), "active")
        if self.trigger == "I14":
            status = "revoked"
        priority = COMMON["priority"].get(segment.get(2).upper(), "routine")
        reason = self.types.codeable(segment.rep(10), table="0336") or {"text": segment.get(3, 2) or segment.get(3) or "referral"}
        referring, referring_organization = self.providers.get("RP", (None, None))
        referred, referred_organization = self.providers.get("RT", (None, None))
        request: dict[str, Any] = {
            "resourceType": "ServiceRequest", "status": status, "intent": "order", "category": [REFERRAL_CATEGORY],
            "priority": priority, "code": self.types.codeable(segment.rep(3), table="0281") or {"text": "referral"},
            "subject": self.subject(), "requester": {"reference": referring or self.sender()},
            "reasonCode": [reason]}
        recipient = referred or referred_organization
        if recipient:
            request["performer"] = [{"reference": recipient}]
        supporting = list(dict.fromkeys(self.supporting))
        if supporting:
            request["supportingInfo"] = [{"reference": s} for s in supporting]
        identifiers = [i for i in (self.types.ei(segment.rep(6), "referral"), self.types.ei(segment.rep(11), "referral"))
                       if i]
        if identifiers:
            request["identifier"] = identifiers
        authored = self.types.date_time(segment.get(9), "RF1-9")
        if authored:
            request["authoredOn"] = authored
        period = self.types.period(segment.get(7), segment.get(8), "RF1-7/8")
        if period:
            request["occurrencePeriod"] = period
        self.context(request)
        if self.trigger != "I12":
            self.keyed(request, identifiers[:1])
            self.warn(f"REF^{self.trigger}: the referral request is updated; its Task moves only through FHIR "
                      f"(PUT Task with the new status), as BayLink's referral workflow requires")
            return
        ref = self.bundle.create_once(request, identifiers[0] if identifiers else None)
        owner = referred_organization or self.organization(self.message.msh.rep(6), "MSH-6")
        if owner is None:
            self.warn("REF: the receiving institution is not named (PRD-10 of the referred-to provider, or MSH-6): "
                      "no referral Task is created")
            return
        task = {"resourceType": "Task", "status": "requested", "intent": "order", "priority": priority,
                "code": {"coding": [{"system": TASK_CODE, "code": "fulfill"}]},
                "focus": {"reference": ref}, "for": self.subject(),
                "requester": {"reference": self.sender() if self.source.institution else referring_organization
                              or self.sender()},
                "owner": {"reference": owner}}
        if identifiers:
            task["identifier"] = identifiers[:1]
        if authored:
            task["authoredOn"] = authored
        self.bundle.post(task)
