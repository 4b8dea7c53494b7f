"""What institutions may write about consent (a ``fhir_exchange`` WriteRule).

- A consent the patient (or their representative) decided on the consent page is theirs:
  no institution updates or deletes it. An institution that wants more asks for it.
- An institution asks with a Consent of status ``proposed``: the request waits on the
  patient's page, and the patient is told (outbox) in the same transaction.
- An institution may record a consent the patient gave on paper, as ``active`` with the
  signed form in ``sourceAttachment`` (or ``sourceReference``): no evidence, no consent.
- Only the page marks a consent as the patient's own (the origin tag cannot be forged).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from consent.records import ORIGIN_SYSTEM, PAGE_CLIENT
from fhir_exchange.errors import Forbidden, Unprocessable
from fhir_exchange.notify.outbox import enqueue
from fhir_exchange.ports import RequestContext


def _origin(resource: dict[str, Any] | None) -> str | None:
    for tag in ((resource or {}).get("meta") or {}).get("tag") or []:
        if tag.get("system") == ORIGIN_SYSTEM:
            return tag.get("code")
    return None


def _is_page(context: RequestContext) -> bool:
    """The consent page acts for a person, never for an institution. A token always carries
    its institution, so a client registered under the page's client id is still held to the
    institutions' rules."""
    return context.client_id == PAGE_CLIENT and context.institution is None


class ConsentWriteRule:
    def check(self, session: Session, context: RequestContext, resource_type: str, previous: dict[str, Any] | None,
              new: dict[str, Any] | None) -> None:
        if resource_type != "Consent" or _is_page(context):
            return
        if _origin(previous) == "patient":
            raise Forbidden(
                f"Consent/{previous.get('id') if previous else ''} is the patient's own decision: only the patient or their "
                "representative changes it, on the consent page. To ask for more, create a Consent with status 'proposed'.")
        if new is None:
            return
        if _origin(new) == "patient":
            raise Forbidden(f"only the patient's consent page may tag a Consent {ORIGIN_SYSTEM}|patient")
        patient = ((new.get("patient") or {}).get("reference") or "")
        if not patient.startswith("Patient/"):
            raise Unprocessable("a Consent must name its patient (Consent.patient: Patient/<id>)",
                                expression=["Consent.patient"])
        status = new.get("status")
        if status == "active" and not (new.get("sourceAttachment") or new.get("sourceReference")):
            raise Unprocessable(
                "an institution records a consent the patient gave elsewhere together with its evidence (the signed form "
                "as Consent.sourceAttachment, or Consent.sourceReference); to ask the patient, create the Consent with "
                "status 'proposed' and it waits on the patient's consent page", expression=["Consent.sourceAttachment"])
        if status == "proposed" and (previous is None or previous.get("status") != "proposed"):
            enqueue(session, f"consent-request:Consent/{new['id']}", "consent-request", patient,
                    {"consent": f"Consent/{new['id']}", "requester": context.institution})
