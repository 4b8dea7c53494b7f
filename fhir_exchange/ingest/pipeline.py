"""Applying one converted input: exactly once per sender and message id, atomically, with the
original kept and every resource traced to it.

To the reader's transaction Bundle the pipeline adds, before applying it in the caller's
single database transaction:
- ``meta.source`` on every resource: the sending institution;
- the original input as a Binary (sealed at rest by the store);
- one Provenance whose targets are every resource the input wrote, whose entity is that
  Binary (role ``source``) and whose agent is the sending institution;
- to every conditional match (``PUT Type?…``, ``ifNoneExist``) the sender's custodian tag: an
  input matches and updates only its sender's own records. The same person's records at other
  institutions stay theirs; record linkage links them (``Patient.link``), so nobody is
  silently duplicated or taken over.
Then it records the input (sender, kind, message id, version) so that the same input sent
again writes nothing (a unique key, so two concurrent resends cannot both apply).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_exchange.bundles import BundleProcessor
from fhir_exchange.convert.base import Conversion, Source
from fhir_exchange.errors import FhirError
from fhir_exchange.ingest.models import IngestedInput
from fhir_exchange.institutions.registry import institution_from_resource
from fhir_exchange.service import FhirService
from fhir_exchange.store.repository import CUSTODIAN_SYSTEM

PROFILES = {"HK": "hk", "MO": "mo", "CN": "cn"}


@dataclass
class Applied:
    status: str  # stored | duplicate
    message_id: str
    event: str
    written: list[str] = field(default_factory=list)
    provenance: str | None = None


def source_for(service: FhirService, institution: str | None) -> Source:
    """The sender and its local flavour, from the institutions registry (HK, MO, CN-…)."""
    if institution is None:
        return Source(None, None)
    try:
        organization = service.repo.read("Organization", institution).content or {}
    except FhirError:
        return Source(institution, None)
    jurisdiction = institution_from_resource(organization).jurisdiction
    return Source(institution, PROFILES.get(jurisdiction.split("-")[0]) if jurisdiction else None)


def previously(session: Session, source: Source, conversion: Conversion) -> IngestedInput | None:
    return session.execute(select(IngestedInput).where(
        IngestedInput.sender == (source.institution or ""), IngestedInput.kind == conversion.kind,
        IngestedInput.message_id == conversion.message_id, IngestedInput.version == (conversion.version or ""),
    )).scalar_one_or_none()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def traced(conversion: Conversion, source: Source, base_url: str) -> dict[str, Any]:
    """The reader's Bundle with meta.source, the original as a Binary and the Provenance."""
    origin = f"{base_url}/Organization/{source.institution}" if source.institution else f"{base_url}/metadata"
    entries = []
    for raw in conversion.bundle.get("entry") or []:
        entry = dict(raw)
        resource = dict(entry.get("resource") or {})
        if resource:
            resource["meta"] = {**(resource.get("meta") or {}), "source": origin}
            entry["resource"] = resource
        request = dict(entry.get("request") or {})
        if source.institution and request.get("method") == "PUT" and "?" in (request.get("url") or ""):
            request["url"] = f"{request['url']}&_tag={CUSTODIAN_SYSTEM}|{source.institution}"
        if source.institution and request.get("ifNoneExist"):
            request["ifNoneExist"] = f"{request['ifNoneExist']}&_tag={CUSTODIAN_SYSTEM}|{source.institution}"
        if request:
            entry["request"] = request
        if not entry.get("fullUrl") and (entry.get("request") or {}).get("method") in ("POST", "PUT"):
            entry["fullUrl"] = f"urn:uuid:{uuid.uuid4()}"
        entries.append(entry)
    targets = [{"reference": e["fullUrl"]} for e in entries
               if (e.get("request") or {}).get("method") in ("POST", "PUT") and e.get("fullUrl")
               and (e.get("resource") or {}).get("resourceType") != "Bundle"]
    binary_url = f"urn:uuid:{uuid.uuid4()}"
    binary: dict[str, Any] = {"resourceType": "Binary", "contentType": conversion.content_type,
                              "data": base64.b64encode(conversion.original).decode("ascii"), "meta": {"source": origin}}
    patient_url = next((e["fullUrl"] for e in entries if (e.get("resource") or {}).get("resourceType") == "Patient"
                        and e.get("fullUrl")), None)
    if patient_url:  # the original is the patient's data: released only as the gate allows for that patient
        binary["securityContext"] = {"reference": patient_url}
    entries.append({"fullUrl": binary_url, "request": {"method": "POST", "url": "Binary"}, "resource": binary})
    if targets:
        agents: list[dict[str, Any]] = [{
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                 "code": "author", "display": "Author"}]},
            "who": {"reference": f"Organization/{source.institution}"} if source.institution else {"display": "unknown"},
        }, {
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                 "code": "assembler", "display": "Assembler"}]},
            "who": {"display": "BayLink conversion"},
        }]
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "request": {"method": "POST", "url": "Provenance"},
                        "resource": {
                            "resourceType": "Provenance", "target": targets, "recorded": _now(),
                            "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                                                     "code": "CREATE", "display": "create"}],
                                         "text": f"converted from {conversion.kind} {conversion.event} "
                                                 f"{conversion.message_id}"},
                            "agent": agents,
                            "entity": [{"role": "source", "what": {"reference": binary_url,
                                                                   "display": f"original {conversion.event}"}}],
                            "meta": {"source": origin}}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def apply(service: FhirService, conversion: Conversion, source: Source) -> Applied:
    """Apply one conversion in the caller's transaction; a resend writes nothing."""
    session = service.repo.session
    seen = previously(session, source, conversion)
    if seen is not None:
        return Applied("duplicate", conversion.message_id, conversion.event, list(seen.written), seen.provenance)
    response = BundleProcessor(service, session).process(traced(conversion, source, service.base_url))
    written = [e["response"]["location"] for e in response.get("entry") or [] if (e.get("response") or {}).get("location")]
    provenance = next((w.split("/_history")[0] for w in written if w.startswith("Provenance/")), "")
    session.add(IngestedInput(sender=source.institution or "", kind=conversion.kind, message_id=conversion.message_id,
                              version=conversion.version or "", event=conversion.event[:64], received=datetime.now(UTC),
                              written=written, provenance=provenance))
    session.flush()
    return Applied("stored", conversion.message_id, conversion.event, written, provenance or None)
