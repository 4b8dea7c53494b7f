"""What BayLink tells institutions about referrals (by email, through the outbox): a new
referral to the receiver, each change of state to the other side, the patient's consent
given, and escalation when a referral waits past its time. Other messages are consent's
(``consent.notices.compose``), to which this composer hands them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from consent import notices as consent_notices
from fhir_exchange.notify.models import OutboxMessage
from fhir_exchange.notify.outbox import Message

STATES = {"received": "received", "accepted": "accepted", "rejected": "rejected", "in-progress": "started",
          "completed": "completed", "cancelled": "cancelled", "failed": "failed", "on-hold": "put on hold",
          "requested": "taken off hold"}


def _text(row: OutboxMessage) -> tuple[str, str] | None:
    payload = row.payload
    task = payload.get("task", "")
    if row.kind == "referral-requested":
        return "New referral", (f"A referral for {payload.get('patient', 'a patient')} from institution "
                                f"{payload.get('requester', '')} waits for you: {task}. Find your referrals with "
                                f"Task?owner=<your Organization>&status=requested.")
    if row.kind == "referral-consent-given":
        return "Referral: patient consent given", (f"The patient has given consent for referral {task}; the "
                                                   f"supporting information can now be read.")
    if row.kind == "referral-overdue":
        return "Referral overdue", (f"Referral {task} ({payload.get('priority', 'routine')}) has not been accepted "
                                    f"within its time.")
    state = row.kind.removeprefix("referral-")
    if row.kind.startswith("referral-") and state in STATES:
        return f"Referral {STATES[state]}", (f"Referral {task} was {STATES[state]} by institution {payload.get('by', '')} "
                                             f"(from '{payload.get('from', '')}' to '{payload.get('to', '')}').")
    return None


def compose(session: Session, row: OutboxMessage) -> list[Message]:
    text = _text(row)
    if text is None:
        return consent_notices.compose(session, row)
    recipient = consent_notices.read_recipient(session, row.recipient)
    contact = consent_notices.contact_of(recipient) if recipient else None
    if contact is None:
        return []
    return [Message(contact[0], contact[1], text[0], text[1], "en", row.kind)]
