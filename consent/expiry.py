"""Consents end with their period: a job marks an active Consent whose provision period
has ended as inactive (the gate already ignores it from that day; this keeps the record true
for the patient's page and for auditors), and tells the patient ahead of time (``WARN_AHEAD``
before the end, once per consent and end date). Both are safe to run twice."""

from __future__ import annotations

from datetime import date, timedelta

from consent.records import recipient_of
from fhir_exchange.notify.outbox import enqueue
from fhir_exchange.service import FhirService

WARN_AHEAD = timedelta(days=14)


def expire_consents(service: FhirService, today: date) -> list[str]:
    """Mark ended Consents inactive; returns their ids."""
    query = service.parser.parse("Consent", [("status", "active")])
    ended = []
    for stored in service.repo.load(service.repo.search_pks(query)):
        consent = stored.content or {}
        end = ((consent.get("provision") or {}).get("period") or {}).get("end")
        if end and end[:10] < today.isoformat():
            # the tags stay (the custodian, and the origin that keeps a patient's consent theirs)
            body = {**{k: v for k, v in consent.items() if k != "meta"},
                    "meta": {k: v for k, v in (consent.get("meta") or {}).items() if k in ("tag", "security", "profile")}}
            service.update("Consent", stored.id, {**body, "status": "inactive"})
            ended.append(stored.id)
    return ended


def warn_expiring(service: FhirService, today: date) -> list[str]:
    """Queue a message to each patient whose active consent ends within ``WARN_AHEAD``;
    returns the consent ids. The outbox's dedupe key (consent and end date) makes a second
    run, or a second day inside the window, send nothing more."""
    query = service.parser.parse("Consent", [("status", "active")])
    warned = []
    for stored in service.repo.load(service.repo.search_pks(query)):
        consent = stored.content or {}
        provision = consent.get("provision") or {}
        end = (provision.get("period") or {}).get("end")
        patient = (consent.get("patient") or {}).get("reference", "")
        if not end or not patient.startswith("Patient/"):
            continue
        if today.isoformat() <= end[:10] <= (today + WARN_AHEAD).isoformat():
            enqueue(service.repo.session, f"consent-expiring:Consent/{stored.id}:{end[:10]}", "consent-expiring", patient,
                    {"consent": f"Consent/{stored.id}", "end": end[:10], "recipient": recipient_of(provision) or ""})
            warned.append(stored.id)
    return warned
