"""Consents end with their period: a daily job marks an active Consent whose provision period
has ended as inactive (the gate already ignores it from that day; this keeps the record true
for the patient's page and for auditors). Safe to run twice."""

from __future__ import annotations

from datetime import date

from fhir_exchange.service import FhirService


def expire_consents(service: FhirService, today: date) -> list[str]:
    """Mark ended Consents inactive; returns their ids."""
    query = service.parser.parse("Consent", [("status", "active")])
    ended = []
    for stored in service.repo.load(service.repo.search_pks(query)):
        consent = stored.content or {}
        end = ((consent.get("provision") or {}).get("period") or {}).get("end")
        if end and end[:10] < today.isoformat():
            body = {k: v for k, v in consent.items() if k != "meta"}
            service.update("Consent", stored.id, {**body, "status": "inactive"})
            ended.append(stored.id)
    return ended
