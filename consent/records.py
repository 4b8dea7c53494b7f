"""What the patient's page does with the store, inside one request's transaction: find a
person's records, list and change their Consents (with evidence), answer consent requests,
say which institutions hold records and who has read them.

Every change a person makes is
- a new version of a FHIR Consent (the store keeps every version), tagged as the patient's
  own (``ORIGIN_SYSTEM|patient``) so that no institution can alter it afterwards (rules.py);
- carried with its evidence: ``Consent.performer`` and ``Consent.verification`` (who, when,
  verified how) and a Provenance on that exact version naming who acted, on whose behalf,
  how they signed in, and from which network address (sealed at rest);
- audited like any other write (the AuditEvent chain), and where it answers an
  institution's request, followed by a message to that institution through the outbox.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select

from consent.policy import ACT_REASON, CROSS_BORDER_URL, DATA_CATEGORY, RECIPIENT_CLASS, RESOURCE_TYPES, applies_to
from fhir_exchange import crypto
from fhir_exchange.errors import Conflict, Forbidden, InvalidRequest, NotFound
from fhir_exchange.identity.documents import InvalidIdentifier, canonical
from fhir_exchange.institutions.registry import institution_from_resource
from fhir_exchange.notify.outbox import enqueue
from fhir_exchange.ports import RequestContext
from fhir_exchange.search.params import SearchParser
from fhir_exchange.service import FhirService
from fhir_exchange.store.models import ReferenceIndex, ResourceRow
from fhir_exchange.store.repository import custodian_of

PAGE_CLIENT = "baylink-consent-page"
ORIGIN_SYSTEM = "http://baylink.example.org/fhir/CodeSystem/consent-origin"
EVIDENCE_METHOD = "http://baylink.example.org/fhir/StructureDefinition/consent-evidence-method"
EVIDENCE_ADDRESS = "http://baylink.example.org/fhir/StructureDefinition/consent-evidence-address"
EVIDENCE_BASIS = "http://baylink.example.org/fhir/StructureDefinition/consent-evidence-basis"
SENSITIVITY = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC_CONSENT = {"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}
SCOPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy",
                     "display": "Privacy Consent"}]}
# The legal basis a consent names (Consent.policy), by the jurisdictions it spans
# (../shared/reference/consent-law.md).
POLICIES = {
    "PIPL": "http://en.npc.gov.cn.cdurl.cn/2021-12/29/c_694559.htm",
    "GBA-SC": "https://www.pcpd.org.hk/english/data_privacy_law/gba_standard_contract.html",
    "PDPO": "https://www.pcpd.org.hk/english/data_privacy_law/ordinance_at_a_Glance/ordinance.html",
    "EHRSS": "https://www.ehealth.gov.hk/en/you_and_your_family/how_to_participate/give_sharing_consent.html",
    "MO-8/2005": "https://www.gpdp.gov.mo/index.php?m=content&c=index&a=lists&catid=209",
}
# The data categories a patient chooses from (policy.CATEGORIES values) and the sensitive
# labels they may opt into by name (terminology valueset-sensitive-data-categories).
GRANTABLE_CATEGORIES = ("demographics", "allergies", "medications", "problems", "results", "imaging", "documents",
                        "encounters", "procedures", "immunizations", "care-plans", "referrals")
SENSITIVE_LABELS = ("PSY", "MH", "SEX", "HIV", "GDIS", "SUD", "ETH")
PURPOSES = ("TREAT", "ETREAT", "HPAYMT", "HRESCH")
RECIPIENT_CLASSES = ("designated:ehcv", "designated:mmdc", "sector:HA", "jurisdiction:HK", "jurisdiction:MO",
                     "jurisdiction:CN")
SEARCH = SearchParser()


def page_context(acting: str) -> RequestContext:
    """Who the page acts as: the signed-in person, through BayLink's own page client."""
    return RequestContext(
        request_id=str(uuid.uuid4()), client_id=PAGE_CLIENT, institution=None, user=acting, purpose_of_use="PATRQT",
        scopes=("system/Patient.rs", "system/RelatedPerson.rs", "system/Consent.cruds", "system/Provenance.crs",
                "system/Organization.rs", "system/AuditEvent.rs"),
    )


@dataclass(frozen=True, slots=True)
class Evidence:
    """How the person acting was verified: sign-in method and network address."""

    acting: str  # Patient/… or RelatedPerson/…
    basis: str  # self | parent | guardian | attorney
    method: str  # otp-sms | otp-email
    address: str


@dataclass
class Grant:
    recipient: str  # "Organization/<id>" or a recipient class ("designated:ehcv", "jurisdiction:CN")
    categories: list[str]
    purposes: list[str]
    end: date
    start: date | None = None
    cross_border: bool = False
    sensitive: list[str] = field(default_factory=list)

    def check(self, today: date) -> None:
        if not self.recipient:
            raise InvalidRequest("choose who may see your records", expression=["recipient"])
        if not self.recipient.startswith("Organization/") and self.recipient not in RECIPIENT_CLASSES:
            raise InvalidRequest(f"unknown recipient {self.recipient!r}", expression=["recipient"])
        if not self.categories or set(self.categories) - set(GRANTABLE_CATEGORIES):
            raise InvalidRequest("choose at least one kind of record", expression=["categories"])
        if not self.purposes or set(self.purposes) - set(PURPOSES):
            raise InvalidRequest("choose at least one purpose", expression=["purposes"])
        if set(self.sensitive) - set(SENSITIVE_LABELS):
            raise InvalidRequest("unknown sensitive category", expression=["sensitive"])
        if self.end < (self.start or today) or self.end < today:
            raise InvalidRequest("the end date must be today or later", expression=["end"])


def _now() -> datetime:
    return datetime.now(UTC)


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


class ConsentBook:
    """The page's operations over one transaction's FhirService (built with the allow-all
    gate: a person sees their own records; writes pass the WriteRules)."""

    def __init__(self, service: FhirService) -> None:
        self.service = service
        self.repo = service.repo
        self.session = service.repo.session

    # --- people ----------------------------------------------------------------------------------

    def _search(self, resource_type: str, criteria: list[tuple[str, str]]) -> list[dict[str, Any]]:
        pks = self.repo.search_pks(SEARCH.parse(resource_type, criteria))
        return [s.content for s in self.repo.load(pks) if s.content]

    def people_with_document(self, system: str, number: str) -> list[dict[str, Any]]:
        """Patients and RelatedPersons holding this identity document."""
        try:
            system, number = canonical(system, number.strip().upper())
        except InvalidIdentifier as exc:
            raise InvalidRequest(str(exc), expression=["number"]) from exc
        token = f"{system}|{number}"
        return self._search("Patient", [("identifier", token)]) + self._search("RelatedPerson", [("identifier", token)])

    def resource(self, reference: str) -> dict[str, Any]:
        resource_type, _, resource_id = reference.partition("/")
        found = self._search(resource_type, [("_id", resource_id)])
        if not found:
            raise NotFound(f"{reference} is not on record")
        return found[0]

    def records_of(self, patient_id: str) -> list[str]:
        """The ids of every Patient record of the same person: the one given and those linked
        to it (Patient.link, made by record linkage), the given one first."""
        seen = [patient_id]
        frontier = [patient_id]
        while frontier:
            current = frontier.pop()
            patient = self._search("Patient", [("_id", current)])
            linked = {(link.get("other") or {}).get("reference", "") for p in patient for link in p.get("link") or []}
            linked |= {f"Patient/{p['id']}" for p in self._search("Patient", [("link", f"Patient/{current}")])}
            for reference in sorted(linked):
                other = reference.removeprefix("Patient/")
                if reference.startswith("Patient/") and other not in seen:
                    seen.append(other)
                    frontier.append(other)
        return seen

    # --- what the page shows ---------------------------------------------------------------------

    def consents(self, patients: list[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for patient in patients:
            found += self._search("Consent", [("patient", f"Patient/{patient}")])
        return sorted(found, key=lambda c: c.get("dateTime") or c["meta"]["lastUpdated"], reverse=True)

    def institutions(self) -> dict[str, dict[str, Any]]:
        """Every institution of the registry, by id, as the registry reads it."""
        return {o["id"]: {"names": (i := institution_from_resource(o)).names, "jurisdiction": i.jurisdiction,
                          "designations": sorted({d.programme for d in i.designations})}
                for o in self._search("Organization", [("_count", "1000")]) if o.get("id")}

    def holdings(self, patients: list[str]) -> dict[str, int]:
        """How many records each institution holds about the person (by custodian)."""
        counts: dict[str, int] = {}
        pks = select(ReferenceIndex.resource_pk).where(
            ReferenceIndex.target_type == "Patient", ReferenceIndex.target_id.in_(patients)).distinct()
        rows = self.session.execute(
            select(ResourceRow.content).where((ResourceRow.pk.in_(pks)) | (
                (ResourceRow.res_type == "Patient") & ResourceRow.res_id.in_(patients)),
                ResourceRow.deleted.is_(False), ResourceRow.res_type.notin_(("AuditEvent", "Provenance", "Consent")))
        ).scalars()
        for content in rows:
            custodian = custodian_of(content)
            if custodian:
                counts[custodian] = counts.get(custodian, 0) + 1
        return counts

    def access_log(self, patients: list[str], limit: int = 200) -> list[dict[str, Any]]:
        """The audit trail's events that touched the person's records, newest first."""
        events: list[dict[str, Any]] = []
        for patient in patients:
            events += self._search("AuditEvent", [("entity", f"Patient/{patient}"), ("_sort", "-date"),
                                                  ("_count", str(limit))])
        return sorted(events, key=lambda e: e.get("recorded", ""), reverse=True)[:limit]

    # --- changes -----------------------------------------------------------------------------

    def _evidence(self, consent: dict[str, Any], activity: str, evidence: Evidence, patient: str) -> None:
        moment = _now()
        agent: dict[str, Any] = {
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                 "code": "author", "display": "Author"}]},
            "who": {"reference": evidence.acting},
        }
        if evidence.acting != f"Patient/{patient}":
            agent["onBehalfOf"] = {"reference": f"Patient/{patient}"}
        self.service.create("Provenance", {
            "resourceType": "Provenance",
            "target": [{"reference": f"Consent/{consent['id']}/_history/{consent['meta']['versionId']}"}],
            "recorded": _instant(moment),
            "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                                     "code": "CREATE" if activity == "granted" else "UPDATE"}], "text": activity},
            "reason": [{"coding": [{"system": ACT_REASON, "code": "PATRQT", "display": "patient requested"}]}],
            "agent": [agent],
            "extension": [
                {"url": EVIDENCE_METHOD, "valueCode": evidence.method},
                {"url": EVIDENCE_BASIS, "valueCode": evidence.basis},
                {"url": EVIDENCE_ADDRESS, "valueString": crypto.vault().seal_text(evidence.address)},
            ],
        })

    @staticmethod
    def _signed(consent: dict[str, Any], evidence: Evidence) -> dict[str, Any]:
        """The Consent with the person's signature on it: performer, verification, origin."""
        moment = _instant(_now())
        meta = dict(consent.get("meta") or {})
        meta["tag"] = [t for t in meta.get("tag") or [] if t.get("system") != ORIGIN_SYSTEM] + [
            {"system": ORIGIN_SYSTEM, "code": "patient", "display": "decided by the patient or their representative"}]
        return {
            **consent, "meta": {k: v for k, v in meta.items() if k in ("tag", "security", "profile")},
            "dateTime": moment,
            "performer": [{"reference": evidence.acting}],
            "verification": [{"verified": True, "verifiedWith": {"reference": evidence.acting}, "verificationDate": moment}],
        }

    def grant(self, patient: str, grant: Grant, evidence: Evidence, jurisdiction_of: dict[str, str]) -> dict[str, Any]:
        today = _now().date()
        grant.check(today)
        if grant.recipient.startswith("Organization/"):
            org = grant.recipient.removeprefix("Organization/")
            if org not in jurisdiction_of:
                raise InvalidRequest(f"{org} is not an institution BayLink knows", expression=["recipient"])
            actor_reference: dict[str, Any] = {"reference": grant.recipient}
        else:
            actor_reference = {"identifier": {"system": RECIPIENT_CLASS, "value": grant.recipient}}
        provision: dict[str, Any] = {
            "type": "permit",
            "period": {"start": (grant.start or today).isoformat(), "end": grant.end.isoformat()},
            "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                            "code": "IRCP", "display": "information recipient"}]},
                       "reference": actor_reference}],
            "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}],
            "purpose": [{"system": ACT_REASON, "code": p} for p in grant.purposes],
            "code": [{"coding": [{"system": DATA_CATEGORY, "code": c}]} for c in grant.categories],
        }
        if grant.sensitive:
            provision["securityLabel"] = [{"system": SENSITIVITY, "code": s} for s in grant.sensitive]
        if grant.cross_border:
            provision["extension"] = [{"url": CROSS_BORDER_URL, "valueBoolean": True}]
        consent = self._signed({
            "resourceType": "Consent",
            "status": "active",
            "scope": SCOPE,
            "category": [{"coding": [LOINC_CONSENT]}],
            "patient": {"reference": f"Patient/{patient}"},
            "policy": [{"uri": uri} for uri in self._policies(grant)],
            "provision": provision,
        }, evidence)
        stored = self.service.create("Consent", consent).body
        assert stored is not None
        self._evidence(stored, "granted", evidence, patient)
        return stored

    @staticmethod
    def _policies(grant: Grant) -> list[str]:
        names = ["PIPL", "PDPO", "EHRSS", "MO-8/2005"]
        if grant.cross_border:
            names.insert(1, "GBA-SC")
        return [POLICIES[n] for n in names]

    def _own(self, consent_id: str, patients: list[str]) -> dict[str, Any]:
        found = self._search("Consent", [("_id", consent_id)])
        if not found or (found[0].get("patient") or {}).get("reference", "").removeprefix("Patient/") not in patients:
            raise NotFound(f"Consent/{consent_id} is not one of yours")
        return found[0]

    def withdraw(self, consent_id: str, patients: list[str], evidence: Evidence) -> dict[str, Any]:
        consent = self._own(consent_id, patients)
        if consent.get("status") != "active":
            raise Conflict("only an active consent can be withdrawn")
        changed = self._signed({**consent, "status": "inactive"}, evidence)
        stored = self.service.update("Consent", consent_id, changed).body
        assert stored is not None
        self._evidence(stored, "withdrawn", evidence, consent["patient"]["reference"].removeprefix("Patient/"))
        self._tell_requester(stored, "withdrawn")
        return stored

    def answer(self, consent_id: str, patients: list[str], evidence: Evidence, *, approve: bool) -> dict[str, Any]:
        """Approve (→ active) or decline (→ rejected) a consent an institution asked for."""
        consent = self._own(consent_id, patients)
        if consent.get("status") != "proposed":
            raise Conflict("this request has already been answered")
        changed = self._signed({**consent, "status": "active" if approve else "rejected"}, evidence)
        if approve:
            changed["policy"] = consent.get("policy") or [{"uri": POLICIES["PIPL"]}]
        stored = self.service.update("Consent", consent_id, changed).body
        assert stored is not None
        self._evidence(stored, "approved" if approve else "declined", evidence,
                       consent["patient"]["reference"].removeprefix("Patient/"))
        self._tell_requester(stored, "approved" if approve else "declined")
        return stored

    def _tell_requester(self, consent: dict[str, Any], what: str) -> None:
        requester = custodian_of(consent)
        if requester:
            enqueue(self.session, f"consent-{what}:Consent/{consent['id']}/_history/{consent['meta']['versionId']}",
                    f"consent-{what}", f"Organization/{requester}",
                    {"consent": f"Consent/{consent['id']}", "patient": consent["patient"]["reference"]})


def active_for(consents: list[dict[str, Any]], patient: str, today: date) -> list[dict[str, Any]]:
    return [c for c in consents if applies_to(c, patient, today)]


def recipient_of(provision: dict[str, Any]) -> str | None:
    for actor in provision.get("actor") or []:
        reference = actor.get("reference") or {}
        if reference.get("reference"):
            return reference["reference"]
        identifier = reference.get("identifier") or {}
        if identifier.get("system") == RECIPIENT_CLASS:
            return identifier.get("value")
    return None


def categories_of(provision: dict[str, Any]) -> list[str]:
    found = [c.get("code") for item in provision.get("code") or [] for c in item.get("coding") or []
             if c.get("system") == DATA_CATEGORY]
    found += [c.get("code") for c in provision.get("class") or [] if c.get("system") in (None, RESOURCE_TYPES)]
    return found


def refuse_unless(allowed: bool, why: str) -> None:
    if not allowed:
        raise Forbidden(why)
