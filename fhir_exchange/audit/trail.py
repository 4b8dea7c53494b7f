"""Recording what a request touched, and writing it as one AuditEvent shaped as IHE Basic
Audit Log Patterns (BALP) says: who (client, institution, user), for which patient(s),
which resources, what action, with what outcome and purpose of use.

The recorder sees every resource the repository releases or writes; if any of them belongs
to a patient, one AuditEvent is appended to the hash chain before the transaction commits.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fhir_exchange import crypto
from fhir_exchange.audit.models import GENESIS, AuditHead, AuditLink
from fhir_exchange.ports import RequestContext

if TYPE_CHECKING:
    from fhir_exchange.store.repository import FhirRepository, StoredResource

CLIENT_SYSTEM = "http://baylink.example.org/fhir/sid/client"
# The references by which a resource names its patient (the R4 Patient compartment's
# usual parameters: subject, patient, beneficiary, for).
PATIENT_FIELDS = ("subject", "patient", "beneficiary", "for")
# (AuditEvent.action, restful-interaction code) per interaction
ACTIONS = {
    "read": "R", "vread": "R", "history-instance": "R", "history-type": "R", "history-system": "R",
    "search-type": "E", "search-system": "E", "operation": "E", "transaction": "E", "batch": "E",
    "create": "C", "update": "U", "delete": "D",
}


# Resource types that name a patient only as the topic of the record: the audit trail itself
# (it has its own access rules) and Patient (its own id). Everything else that refers to a
# Patient anywhere, not only through the usual fields (Appointment.participant.actor,
# Provenance.target, Group.member.entity, ResearchSubject.individual, Communication.recipient…),
# is that patient's data.
_NOT_SCANNED = frozenset({"AuditEvent", "Patient"})


def _patient_references(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        value = node.get("reference")
        if isinstance(value, str) and value.startswith("Patient/"):
            found.add(value.removeprefix("Patient/").split("/")[0])
        for child in node.values():
            if isinstance(child, (dict, list)):
                _patient_references(child, found)
    elif isinstance(node, list):
        for child in node:
            if isinstance(child, (dict, list)):
                _patient_references(child, found)


def patients_of(resource_type: str, resource_id: str, content: dict[str, Any] | None) -> set[str]:
    """The patients a resource is about: by the usual fields (subject, patient, beneficiary,
    for), else by any reference to a Patient inside it (the R4 Patient compartment reaches
    patients through many paths; a reference anywhere is the safe reading)."""
    if resource_type == "Patient":
        return {resource_id}
    found: set[str] = set()
    for name in PATIENT_FIELDS:
        reference = ((content or {}).get(name) or {})
        value = reference.get("reference") if isinstance(reference, dict) else None
        if isinstance(value, str) and value.startswith("Patient/"):
            found.add(value.removeprefix("Patient/").split("/")[0])
    if not found and content and resource_type not in _NOT_SCANNED:
        _patient_references(content, found)
    return found


@dataclass
class AuditRecorder:
    context: RequestContext
    interaction: str
    query: str | None = None
    entities: dict[tuple[str, str], int | None] = field(default_factory=dict)
    patients: set[str] = field(default_factory=set)
    # what the release gate withheld: recorded too (outcome 4), so that the patient's access log
    # shows attempts that were refused, not only releases
    refused_entities: dict[tuple[str, str], int | None] = field(default_factory=dict)
    refused_patients: set[str] = field(default_factory=set)

    def refused(self, stored: StoredResource) -> None:
        if stored.resource_type == "AuditEvent":
            return
        self.refused_entities[(stored.resource_type, stored.id)] = stored.version_id
        self.refused_patients |= patients_of(stored.resource_type, stored.id, stored.content)

    def refusal_event(self, moment: datetime | None = None) -> dict[str, Any] | None:
        """The AuditEvent for what the gate withheld (outcome 4, minor failure); None if nothing
        of a patient's was withheld."""
        if not self.refused_patients:
            return None
        return self._event(self.refused_entities, self.refused_patients, "4", "withheld by the release gate", moment)

    def touched(self, stored: StoredResource) -> None:
        if stored.resource_type == "AuditEvent":
            return
        self.entities[(stored.resource_type, stored.id)] = stored.version_id
        self.patients |= patients_of(stored.resource_type, stored.id, stored.content)

    def deleted(self, resource_type: str, resource_id: str, content: dict[str, Any] | None) -> None:
        self.entities[(resource_type, resource_id)] = None
        self.patients |= patients_of(resource_type, resource_id, content)

    def event(self, moment: datetime | None = None) -> dict[str, Any] | None:
        """The AuditEvent for what was recorded; None if no patient's data was touched."""
        if not self.patients:
            return None
        return self._event(self.entities, self.patients, "0", None, moment)

    def _event(self, touched: dict[tuple[str, str], int | None], patients: set[str], outcome: str,
               description: str | None, moment: datetime | None) -> dict[str, Any]:
        context = self.context
        action = ACTIONS.get(self.interaction, "E")
        agents: list[dict[str, Any]] = [{
            "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110153",
                                 "display": "Source Role ID"}]},
            "who": {"identifier": {"system": CLIENT_SYSTEM, "value": context.client_id or "unknown"}},
            "requestor": context.user is None,
        }]
        if context.institution:
            agents.append({
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleClass", "code": "PROV",
                                     "display": "healthcare provider"}]},
                "who": {"reference": f"Organization/{context.institution}"},
                "requestor": False,
            })
        if context.user:
            agents.append({
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                     "code": "IRCP", "display": "information recipient"}]},
                "who": {"reference": context.user},
                "role": [{"text": role} for role in context.roles] or None,
                "requestor": True,
            })
        entities: list[dict[str, Any]] = [
            {"what": {"reference": f"Patient/{patient}"},
             "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
             "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}}
            for patient in sorted(patients)
        ]
        for (resource_type, resource_id), version in touched.items():
            if resource_type == "Patient":
                continue
            reference = f"{resource_type}/{resource_id}" + (f"/_history/{version}" if version else "")
            entities.append({
                "what": {"reference": reference},
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2",
                         "display": "System Object"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "4",
                         "display": "Domain Resource"},
            })
        if self.query:
            query = crypto.vault().redact_query(self.query)
            entities.append({
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2",
                         "display": "System Object"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24", "display": "Query"},
                "query": base64.b64encode(query.encode()).decode(),
            })
        event = {
            "resourceType": "AuditEvent",
            "meta": {"profile": ["https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"
                                 if action == "R" else
                                 "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientQuery"
                                 if action == "E" else
                                 "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientCreate"
                                 if action == "C" else
                                 "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientUpdate"
                                 if action == "U" else
                                 "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientDelete"]},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
                     "display": "Restful Operation"},
            "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": self.interaction}],
            "action": action,
            "recorded": (moment or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "outcome": outcome,
            **({"outcomeDesc": description} if description else {}),
            "purposeOfEvent": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                            "code": context.purpose_of_use}],
                                **({"text": context.reason} if context.reason else {})}],
            "agent": [{k: v for k, v in agent.items() if v is not None} for agent in agents],
            "source": {"observer": {"display": "BayLink"},
                       "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4",
                                 "display": "Application Server"}]},
            "entity": entities,
        }
        return event


def content_hash(document: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def chain_hash(previous: str, content: str) -> str:
    return hashlib.sha256(f"{previous}{content}".encode()).hexdigest()


def append(repository: FhirRepository, event: dict[str, Any]) -> StoredResource:
    """Store the AuditEvent and add its link to the chain, under the head's lock."""
    session = repository.session
    head = _locked_head(session)
    stored = repository.write_internal("AuditEvent", str(uuid.uuid4()), event, fresh=True)
    assert stored.content is not None
    digest = content_hash(stored.content)
    link_hash = chain_hash(head.chain_hash, digest)
    seq = head.seq + 1
    session.add(AuditLink(seq=seq, resource_pk=stored.pk, event_id=stored.id, recorded=stored.last_updated,
                          content_hash=digest, chain_hash=link_hash))
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, chain_hash=link_hash))
    session.flush()
    return stored


def _locked_head(session: Session) -> AuditHead:
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one_or_none()
    if head is None:  # made by migration 0006; remade if the table was emptied
        session.add(AuditHead(id=1, seq=0, chain_hash=GENESIS))
        session.flush()
        head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
    return head


@dataclass(frozen=True, slots=True)
class Verification:
    checked: int
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(session: Session, batch: int = 5000) -> Verification:
    """Walk the chain from the start: every link in sequence with no gap, every AuditEvent's
    content hashing to what its link says, every link chaining from the one before, and the
    head at the last link. Names the first bad record."""
    from fhir_exchange.store.models import ResourceRow

    previous, expected_seq, checked = GENESIS, 1, 0
    last_seq = 0
    while True:
        rows = session.execute(
            select(AuditLink, ResourceRow.content, ResourceRow.res_type, ResourceRow.res_id)
            .join(ResourceRow, ResourceRow.pk == AuditLink.resource_pk, isouter=True)
            .where(AuditLink.seq >= expected_seq).order_by(AuditLink.seq).limit(batch)
        ).all()
        if not rows:
            break
        for link, content, res_type, res_id in rows:
            where = f"record {link.seq} (AuditEvent/{link.event_id})"
            if link.seq != expected_seq:
                return Verification(checked, f"record {expected_seq} is missing: the chain jumps to {where}")
            if content is None or res_type != "AuditEvent" or res_id != link.event_id:
                return Verification(checked, f"{where}: its AuditEvent has been removed or replaced")
            if content_hash(content) != link.content_hash:
                return Verification(checked, f"{where}: the AuditEvent's content has been altered")
            if chain_hash(previous, link.content_hash) != link.chain_hash:
                return Verification(checked, f"{where}: does not chain from record {link.seq - 1} "
                                             "(records removed, reordered or rewritten)")
            previous, expected_seq, last_seq = link.chain_hash, link.seq + 1, link.seq
            checked += 1
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    head_seq, head_hash = (head.seq, head.chain_hash) if head is not None else (0, GENESIS)
    if head_seq != last_seq or head_hash != previous:
        return Verification(checked, f"the chain ends at record {last_seq} but its head says {head_seq}: "
                                     "records after it have been removed")
    return Verification(checked)
