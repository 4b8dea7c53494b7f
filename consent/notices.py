"""What BayLink tells patients and institutions about consent, in their language, and to
which address: the outbox's composer (fhir_exchange.notify), the break-glass listener on
the audit trail, and the sign-in code message.

Patients are told (by SMS, else email, as eHealth and SSM do): of a request for access to
their records, of an emergency (break-glass) access, and ahead of a consent's end.
Institutions are told (by email) when a patient answers their request or withdraws.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.models import LanguagePreference
from consent.web.messages import date_time
from fhir_exchange.notify.models import OutboxMessage
from fhir_exchange.notify.outbox import Message, enqueue
from fhir_exchange.ports import AllowAllGate, RequestContext
from fhir_exchange.store.repository import FhirRepository

LANGUAGES = ("zh-Hant", "zh-Hans", "en")
_CONTEXT = RequestContext(request_id="baylink-notices", client_id="baylink-notices", purpose_of_use="HOPERAT",
                          scopes=("system/Patient.r", "system/RelatedPerson.r", "system/Organization.r", "system/Consent.r"))

TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "signin-code": {
        "en": ("Your BayLink sign-in code", "Your BayLink sign-in code is {code}. It expires in {minutes} minutes. "
                                            "BayLink never asks for it by phone."),
        "zh-Hant": ("BayLink 登入驗證碼", "你的 BayLink 登入驗證碼是 {code}，{minutes} 分鐘內有效。BayLink 不會致電索取驗證碼。"),
        "zh-Hans": ("BayLink 登录验证码", "你的 BayLink 登录验证码是 {code}，{minutes} 分钟内有效。BayLink 不会致电索取验证码。"),
    },
    "consent-request": {
        "en": ("An institution asks to see your records", "{requester} asks for access to your health records. "
                                                          "Sign in to BayLink's consent page to approve or decline."),
        "zh-Hant": ("有機構要求查閱你的紀錄", "{requester} 要求查閱你的健康紀錄。請登入 BayLink 同意書頁面批准或拒絕。"),
        "zh-Hans": ("有机构请求查阅你的记录", "{requester} 请求查阅你的健康记录。请登录 BayLink 同意书页面批准或拒绝。"),
    },
    "break-glass": {
        "en": ("Emergency access to your records", "{requester} opened your records in an emergency on {when} "
                                                   "(reason given: {reason}). See the access log on BayLink's consent page."),
        "zh-Hant": ("你的紀錄曾被緊急查閱", "{requester} 於 {when} 在緊急情況下查閱了你的紀錄（理由：{reason}）。"
                                           "詳情見 BayLink 同意書頁面的查閱紀錄。"),
        "zh-Hans": ("你的记录曾被紧急查阅", "{requester} 于 {when} 在紧急情况下查阅了你的记录（理由：{reason}）。"
                                           "详情见 BayLink 同意书页面的查阅记录。"),
    },
    "consent-expiring": {
        "en": ("Your consent ends soon", "Your consent {consent} for {recipient} ends on {end}. "
                                         "Sign in to BayLink's consent page to renew it if you wish."),
        "zh-Hant": ("你的同意即將到期",
                    "你給予 {recipient} 的同意（{consent}）將於 {end} 到期。如需延續，請登入 BayLink 同意書頁面。"),
        "zh-Hans": ("你的同意即将到期",
                    "你给予 {recipient} 的同意（{consent}）将于 {end} 到期。如需延续，请登录 BayLink 同意书页面。"),
    },
    "consent-approved": {"en": ("Consent request approved", "The patient {patient} approved your request {consent}.")},
    "consent-declined": {"en": ("Consent request declined", "The patient {patient} declined your request {consent}.")},
    "consent-withdrawn": {"en": ("Consent withdrawn", "The patient {patient} withdrew consent {consent}. "
                                                      "It no longer permits access from now on.")},
}


def text(kind: str, language: str, **values: Any) -> tuple[str, str]:
    texts = TEXTS[kind]
    subject, body = texts.get(language) or texts["en"]
    return subject.format(**values), body.format(**values)


def contact_of(person: dict[str, Any]) -> tuple[str, str] | None:
    """(channel, address) to reach a person or institution: a mobile phone for SMS, else a
    phone, else an email."""
    telecom = [t for t in person.get("telecom") or [] if t.get("value") and not (t.get("period") or {}).get("end")]
    for wanted in (lambda t: t.get("system") == "sms" or (t.get("system") == "phone" and t.get("use") == "mobile"),
                   lambda t: t.get("system") == "phone",
                   lambda t: t.get("system") == "email"):
        for item in sorted(telecom, key=lambda t: t.get("rank", 99)):
            if wanted(item):
                return ("email" if item["system"] == "email" else "sms"), item["value"]
    return None


def language_of(session: Session, reference: str, person: dict[str, Any] | None) -> str:
    chosen = session.execute(select(LanguagePreference.language).where(LanguagePreference.person == reference)).scalar()
    if chosen:
        return chosen
    for communication in (person or {}).get("communication") or []:
        for coding in (communication.get("language") or {}).get("coding") or []:
            code = (coding.get("code") or "").lower()
            if code in ("zh-hk", "zh-tw", "zh-mo", "zh-hant", "yue"):
                return "zh-Hant"
            if code.startswith("zh"):
                return "zh-Hans"
            if code.startswith("en"):
                return "en"
    return "zh-Hant"


def read_recipient(session: Session, reference: str) -> dict[str, Any] | None:
    resource_type, _, resource_id = reference.partition("/")
    repository = FhirRepository(session, _CONTEXT, AllowAllGate())
    try:
        return repository.read(resource_type, resource_id).content
    except Exception:
        return None


def _name_of_org(session: Session, org_id: str | None, language: str) -> str:
    from fhir_exchange.institutions.registry import institution_from_resource

    if not org_id:
        return "BayLink"
    org = read_recipient(session, f"Organization/{org_id}")
    if org is None:
        return org_id
    names = institution_from_resource(org).names
    return names.get(language) or names.get("en") or org_id


def compose(session: Session, row: OutboxMessage) -> list[Message]:
    """The outbox's composer for consent messages."""
    recipient = read_recipient(session, row.recipient)
    if recipient is None:
        return []
    contact = contact_of(recipient)
    if contact is None:
        return []
    language = language_of(session, row.recipient, recipient) if not row.recipient.startswith("Organization/") else "en"
    payload = row.payload
    values = {k: v for k, v in payload.items() if isinstance(v, str)}
    values["requester"] = _name_of_org(session, payload.get("requester"), language)
    values.setdefault("patient", payload.get("patient", ""))
    values.setdefault("consent", payload.get("consent", ""))
    if row.kind == "break-glass" and payload.get("when"):
        # the instant, as the page's access log shows it: Bay Area time, in the reader's language
        values["when"] = date_time(language, payload["when"])
    if row.kind == "consent-expiring":
        values["recipient"] = (_name_of_org(session, payload["recipient"].removeprefix("Organization/"), language)
                               if payload.get("recipient", "").startswith("Organization/") else payload.get("recipient", ""))
    subject, body = text(row.kind, language, **values)
    return [Message(contact[0], contact[1], subject, body, language, row.kind)]


def notify_break_glass(session: Session, event: dict[str, Any]) -> None:
    """Audit listener: an emergency access (purpose ETREAT with a stated reason) is told to
    each patient whose records it touched. Written with the AuditEvent, so it cannot be lost."""
    purposes = event.get("purposeOfEvent") or []
    emergency = [p for p in purposes for c in p.get("coding") or [] if c.get("code") == "ETREAT"]
    if not emergency:
        return
    reason = emergency[0].get("text") or ""
    institution = next((a["who"]["reference"].removeprefix("Organization/") for a in event.get("agent") or []
                        if (a.get("who") or {}).get("reference", "").startswith("Organization/")), None)
    event_id = event.get("id") or str(uuid.uuid4())
    for entity in event.get("entity") or []:
        reference = (entity.get("what") or {}).get("reference", "")
        if reference.startswith("Patient/") and (entity.get("role") or {}).get("code") == "1":
            enqueue(session, f"break-glass:{event_id}:{reference}", "break-glass", reference,
                    {"requester": institution, "reason": reason, "when": event.get("recorded", ""),
                     "event": f"AuditEvent/{event_id}"})
