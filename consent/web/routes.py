"""/consent: the patient's own page. Server-rendered (Jinja2), plain forms that work without
JavaScript, POST-redirect-GET, one database transaction per request.

Pages: sign in (document number → one-time code), choose whom to act for (yourself, or a
child or adult you are guardian or attorney for), and home: who holds your records, your
active consents in plain words, requests waiting for an answer, a form to give a consent,
and the access log. /consent/dev/messages shows sent messages in development only.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from consent.models import LanguagePreference, PageSession
from consent.notices import contact_of, text
from consent.people import Authority, age_of_consent, authority_of_related, authority_of_self
from consent.policy import CATEGORIES, CROSS_BORDER_URL
from consent.records import (
    GRANTABLE_CATEGORIES,
    PURPOSES,
    RECIPIENT_CLASSES,
    SENSITIVE_LABELS,
    ConsentBook,
    Evidence,
    Grant,
    active_for,
    categories_of,
    page_context,
    recipient_of,
)
from consent.web import signin
from consent.web.messages import LANGUAGE_NAMES, LANGUAGES, date_time, join, long_date, money, pick_language, translate
from fhir_exchange.audit.trail import AuditRecorder, append
from fhir_exchange.errors import FhirError
from fhir_exchange.identity.documents import document_for
from fhir_exchange.notify.outbox import ConsoleSender, Message, Sender
from fhir_exchange.ports import AllowAllGate, WriteRule
from fhir_exchange.service import FhirService
from fhir_exchange.store.repository import FhirRepository

SESSION_COOKIE = "baylink_consent"
LANGUAGE_COOKIE = "baylink_lang"
ANON_CSRF_COOKIE = "baylink_csrf"
DOCUMENTS = (  # (message key, identifier system) offered on the sign-in form
    ("doc_hkid", "http://baylink.example.org/fhir/sid/hkid"),
    ("doc_mo", "http://baylink.example.org/fhir/sid/mo-bir"),
    ("doc_cn", "http://baylink.example.org/fhir/sid/cn-resident-id"),
    ("doc_rp", "http://baylink.example.org/fhir/sid/cn-residence-permit-hkmotw"),
    ("doc_tp", "http://baylink.example.org/fhir/sid/cn-travel-permit-hkmo"),
    ("doc_ee", "http://baylink.example.org/fhir/sid/cn-exit-entry-permit-hkmo"),
)
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")),
                        autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)

# The messages a redirect may name in ?notice= / ?error= (no free text: nobody can put their
# own words on the page through a link).
MESSAGE_KEYS = frozenset({
    "signed_out", "session_expired", "granted_ok", "withdrawn_ok", "approved_ok", "declined_ok", "csrf", "not_found",
    "conflict", "refused_no_authority", "err_recipient", "err_categories", "err_purposes", "err_end", "err_sensitive",
    "form_invalid"})
# A refused form field (InvalidRequest.expression) → the message that explains it
FIELD_ERRORS = {"recipient": "err_recipient", "categories": "err_categories", "purposes": "err_purposes", "end": "err_end",
                "sensitive": "err_sensitive"}
STYLESHEET = Path(__file__).with_name("static").joinpath("consent.css").read_text(encoding="utf-8")
router = APIRouter(prefix="/consent", include_in_schema=False)


@dataclass
class ConsentPage:
    """What the page needs, given by the composition root (``baylink.app``)."""

    sessions: sessionmaker[Session]
    sender: Sender = field(default_factory=ConsoleSender)
    write_rules: tuple[WriteRule, ...] = ()
    development: bool = False
    cookie_secure: bool = True
    kick: Callable[[], None] = lambda: None  # ask the worker to deliver the outbox now
    # the Elderly Health Care Voucher balance and recent claims of a person's records, if the
    # deployment has the voucher (referral.voucher.api.balance_for, passed in by baylink.app)
    voucher: Callable[[Session, list[str]], tuple[Any, list[dict[str, Any]]]] | None = None


def _page(request: Request) -> ConsentPage:
    return request.app.state.consent_page


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@contextmanager
def _transaction(request: Request, acting: str | None, *, audited: str | None = None) -> Iterator[tuple[ConsentBook, Session]]:
    """One request, one transaction, as the signed-in person through the page's client.
    Changes are audited (an AuditEvent on the chain, as for any write); page views are not."""
    page = _page(request)
    context = page_context(acting or "anonymous")
    with page.sessions() as session, session.begin():
        repository = FhirRepository(session, context, AllowAllGate(), write_rules=page.write_rules)
        recorder = AuditRecorder(context, audited) if audited else None
        repository.audit = recorder
        yield ConsentBook(FhirService(repository, str(request.base_url).rstrip("/") + "/fhir")), session
        if recorder is not None and (event := recorder.event()) is not None:
            append(repository, event)


# --- rendering ---------------------------------------------------------------------------------------


def _language(request: Request, row: PageSession | None = None) -> str:
    if row is not None and row.language:
        return row.language
    return pick_language(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))


def _render(request: Request, template: str, language: str, status: int = 200, **values: Any) -> HTMLResponse:
    def t(key: str, **kw: Any) -> str:
        return translate(language, key, **kw)

    def message(key: str | None) -> str | None:
        """Only the page's own messages are shown from the query string (never its text)."""
        return translate(language, key) if key in MESSAGE_KEYS else None

    html = TEMPLATES.get_template(template).render(
        t=t, lang=language, languages=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGES], path=request.url.path,
        notice=values.pop("notice_text", None) or message(request.query_params.get("notice")),
        error=values.pop("error", None) or message(request.query_params.get("error")), **values)
    response = HTMLResponse(html, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'; form-action 'self'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None = None) -> None:
    page = _page(request)
    response.set_cookie(name, value, max_age=max_age, path="/consent", httponly=True, samesite="strict",
                        secure=page.cookie_secure)


# --- sign in -----------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def sign_in_form(request: Request, lang: str | None = None) -> Response:
    language = pick_language(lang, None) if lang else _language(request)
    with _transaction(request, None) as (_, session):
        if signin.current(session, request.cookies.get(SESSION_COOKIE)) is not None:
            return _redirect("/consent/home")
    token = request.cookies.get(ANON_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = _render(request, "signin.html", language, documents=DOCUMENTS, csrf=token)
    _set_cookie(request, response, ANON_CSRF_COOKIE, token)
    if lang:
        _set_cookie(request, response, LANGUAGE_COOKIE, language, max_age=365 * 86400)
    return response


def _anonymous_csrf_ok(request: Request, csrf: str) -> bool:
    cookie = request.cookies.get(ANON_CSRF_COOKIE)
    return bool(cookie) and secrets.compare_digest(cookie, csrf)


@router.post("/code", response_class=HTMLResponse)
def send_code(request: Request, system: str = Form(...), number: str = Form(...), csrf: str = Form("")) -> Response:
    language = _language(request)
    if not _anonymous_csrf_ok(request, csrf):
        return _render(request, "signin.html", language, 403, documents=DOCUMENTS, csrf=request.cookies.get(ANON_CSRF_COOKIE, ""),
                       error=translate(language, "csrf"))
    if document_for(system) is None or system not in dict((s, k) for k, s in DOCUMENTS):
        return _render(request, "signin.html", language, 400, documents=DOCUMENTS, csrf=csrf,
                       error=translate(language, "invalid_number", detail=system))
    page = _page(request)
    try:
        with _transaction(request, None) as (book, session):
            people = book.people_with_document(system, number)
            contact = next((c for p in people if (c := contact_of(p)) is not None), None)
            document = f"{system}|{number.strip().upper()}"
            from fhir_exchange.identity.documents import canonical

            document = "|".join(str(x) for x in canonical(system, number.strip().upper()))
            challenge = signin.new_challenge(session, document, contact is not None,
                                             contact[0] if contact else "sms", _address(request))
    except FhirError as exc:
        return _render(request, "signin.html", language, 400, documents=DOCUMENTS, csrf=csrf,
                       error=translate(language, "invalid_number", detail=exc.issues[0].diagnostics))
    except signin.TooManyAttempts:
        return _render(request, "signin.html", language, 429, documents=DOCUMENTS, csrf=csrf,
                       error=translate(language, "too_many"))
    if challenge.code is not None and contact is not None:
        subject, body = text("signin-code", language, code=challenge.code, minutes=10)
        page.sender.send(Message(contact[0], contact[1], subject, body, language, "signin-code"))
    return _render(request, "verify.html", language, challenge=challenge.challenge, csrf=csrf,
                   notice_text=translate(language, "code_sent"))


@router.post("/verify", response_class=HTMLResponse)
def verify_code(request: Request, challenge: str = Form(...), code: str = Form(...), csrf: str = Form("")) -> Response:
    language = _language(request)
    if not _anonymous_csrf_ok(request, csrf):
        return _render(request, "verify.html", language, 403, challenge=challenge, csrf=csrf, error=translate(language, "csrf"))
    with _transaction(request, None) as (_, session):
        verified = signin.verify(session, challenge, code)
        token = signin.start(session, verified[0], verified[1], _address(request), language) if verified else None
    if token is None:
        return _render(request, "verify.html", language, 401, challenge=challenge, csrf=csrf,
                       error=translate(language, "code_wrong"))
    response = _redirect("/consent/home")
    _set_cookie(request, response, SESSION_COOKIE, token, max_age=int(signin.SESSION_LIFETIME.total_seconds()))
    return response


@router.post("/signout")
def sign_out(request: Request, csrf: str = Form("")) -> Response:
    with _transaction(request, None) as (_, session):
        row = signin.current(session, request.cookies.get(SESSION_COOKIE))
        if row is not None and secrets.compare_digest(row.csrf, csrf):
            signin.end(session, request.cookies.get(SESSION_COOKIE))
    response = _redirect("/consent?notice=signed_out")
    response.delete_cookie(SESSION_COOKIE, path="/consent")
    return response


# --- who acts for whom -------------------------------------------------------------------------------


def _authorities(book: ConsentBook, row: PageSession) -> list[tuple[Authority, dict[str, Any]]]:
    """Everyone the signed-in person may (or, with the reason, may not) decide for."""
    system, _, number = signin.document_of(row).partition("|")
    today = datetime.now(UTC).date()
    found: list[tuple[Authority, dict[str, Any]]] = []
    for person in book.people_with_document(system, number):
        if person["resourceType"] == "Patient":
            found.append((authority_of_self(person, today), person))
        else:
            patient_ref = (person.get("patient") or {}).get("reference", "")
            try:
                patient = book.resource(patient_ref)
            except FhirError:
                continue
            found.append((authority_of_related(person, patient, today), patient))
    return found


def _display_name(person: dict[str, Any], language: str) -> str:
    names = person.get("name") or []
    wanted = "zh" if language.startswith("zh") else "en"
    for name in names:
        if (name.get("text") or "") and any(ord(ch) > 0x2E80 for ch in name["text"]) == (wanted == "zh"):
            return name["text"]
    for name in names:
        if name.get("text"):
            return name["text"]
        parts = [*name.get("given", []), name.get("family", "")]
        if any(parts):
            return " ".join(p for p in parts if p)
    return person.get("id", "")


def _signed_in(request: Request, session: Session) -> PageSession | None:
    return signin.current(session, request.cookies.get(SESSION_COOKIE))


def _csrf_ok(row: PageSession, csrf: str) -> bool:
    return bool(csrf) and secrets.compare_digest(row.csrf, csrf)


def _chosen(book: ConsentBook, row: PageSession) -> Authority | None:
    """The authority the session acts under, re-checked now (a child may have come of age)."""
    if row.patient is None:
        return None
    for authority, _ in _authorities(book, row):
        if authority.patient == row.patient and authority.acting == row.acting:
            return authority if authority.allowed else None
    return None


@router.get("/home", response_class=HTMLResponse)
def home(request: Request, lang: str | None = None) -> Response:
    with _transaction(request, None) as (book, session):
        row = _signed_in(request, session)
        if row is None:
            return _redirect("/consent?error=" + translate(_language(request), "session_expired"))
        if lang in LANGUAGES:
            row.language = lang
            _remember_language(session, row.acting, lang)
        language = _language(request, row)
        authority = _chosen(book, row)
        if authority is None:
            choices = _authorities(book, row)
            allowed = [a for a, _ in choices if a.allowed]
            if len(allowed) == 1 and len(choices) == 1:
                row.patient, row.acting = allowed[0].patient, allowed[0].acting
                authority = allowed[0]
            else:
                return _render(request, "choose.html", language, csrf=row.csrf, choices=[
                    {"authority": a, "name": _display_name(p, language),
                     "why": translate(language, a.why, age=age_of_consent(p)) if a.why else ""} for a, p in choices])
        view = _home_view(book, authority, language)
        view["voucher"] = _voucher_view(_page(request), session, book, authority, language, view)
    response = _render(request, "home.html", language, csrf=row.csrf, **view)
    if lang in LANGUAGES:
        _set_cookie(request, response, LANGUAGE_COOKIE, lang, max_age=365 * 86400)
    return response


@router.post("/act")
def act_for(request: Request, choice: str = Form(...), csrf: str = Form("")) -> Response:
    with _transaction(request, None) as (book, session):
        row = _signed_in(request, session)
        if row is None or not _csrf_ok(row, csrf):
            return _redirect("/consent?error=" + translate(_language(request), "session_expired"))
        acting, _, patient = choice.partition("@")
        for authority, _person in _authorities(book, row):
            if authority.allowed and authority.acting == acting and authority.patient == patient:
                row.acting, row.patient = acting, patient
                stored = session.get(LanguagePreference, acting)
                if stored is not None:
                    row.language = stored.language
                break
    return _redirect("/consent/home")


def _remember_language(session: Session, person: str | None, language: str) -> None:
    if not person:
        return
    values = {"person": person, "language": language, "updated": datetime.now(UTC)}
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(LanguagePreference).values(**values)
    session.execute(statement.on_conflict_do_update(index_elements=["person"],
                                                    set_={"language": language, "updated": values["updated"]}))


# --- the home page -----------------------------------------------------------------------------------


def _recipient_label(recipient: str | None, institutions: dict[str, dict[str, Any]], language: str) -> str:
    if recipient is None:
        return "—"
    if recipient.startswith("Organization/"):
        org = institutions.get(recipient.removeprefix("Organization/"))
        names = (org or {}).get("names") or {}
        return names.get(language) or names.get("en") or recipient.removeprefix("Organization/")
    return translate(language, "class_" + recipient.replace(":", "_"))


def _sentence(consent: dict[str, Any], institutions: dict[str, dict[str, Any]], language: str) -> dict[str, Any]:
    provision = consent.get("provision") or {}
    categories = [translate(language, f"cat_{c}") for c in categories_of(provision)] or [translate(language, "cat_documents")]
    purposes = [translate(language, f"purpose_{p.get('code')}") for p in provision.get("purpose") or []] or [
        translate(language, "purpose_TREAT")]
    end = (provision.get("period") or {}).get("end")
    cross = any(e.get("url") == CROSS_BORDER_URL and e.get("valueBoolean") for e in provision.get("extension") or [])
    labels = [translate(language, f"sens_{c.get('code')}") for c in provision.get("securityLabel") or []]
    return {
        "id": consent["id"],
        "text": translate(language, "consent_sentence",
                          recipient=_recipient_label(recipient_of(provision), institutions, language),
                          categories=join(language, categories), purposes=join(language, purposes),
                          end=long_date(language, end) if end else "—"),
        "cross_border": cross,
        "sensitive": join(language, labels) if labels else "",
        "requester": _recipient_label(
            f"Organization/{c}" if (c := next((t.get("code") for t in consent["meta"].get("tag") or []
                                                if t.get("system", "").endswith("/custodian")), None)) else None,
            institutions, language),
    }


def _access_rows(events: list[dict[str, Any]], institutions: dict[str, dict[str, Any]], language: str) -> list[dict[str, Any]]:
    rows = []
    for event in events:
        who = next((a["who"]["reference"] for a in event.get("agent") or []
                    if (a.get("who") or {}).get("reference", "").startswith("Organization/")), None)
        client = next((((a.get("who") or {}).get("identifier") or {}).get("value") for a in event.get("agent") or []
                       if (a.get("who") or {}).get("identifier")), None)
        purpose = next((c.get("code") for p in event.get("purposeOfEvent") or [] for c in p.get("coding") or []), "TREAT")
        reason = next((p.get("text") for p in event.get("purposeOfEvent") or [] if p.get("text")), "")
        kinds = sorted({translate(language, f"cat_{'consents' if t == 'Consent' else CATEGORIES.get(t, 'other')}") for t in (
            e["what"]["reference"].split("/")[0] for e in event.get("entity") or [] if (e.get("what") or {}).get("reference"))
            if t not in ("Patient", "Organization", "Provenance", "Practitioner", "PractitionerRole", "Location")})
        rows.append({
            "when": date_time(language, event.get("recorded", "")),
            "who": (translate(language, "you") if client == "baylink-consent-page"
                    else _recipient_label(who, institutions, language) if who else client),
            "what": translate(language, f"action_{event.get('action', 'R')}") + (f" ({', '.join(kinds)})" if kinds else ""),
            "why": translate(language, f"purpose_{purpose}"),
            "emergency": purpose == "ETREAT",
            "refused": event.get("outcome") == "4",
            "reason": reason,
        })
    return rows


def _home_view(book: ConsentBook, authority: Authority, language: str) -> dict[str, Any]:
    patients = book.records_of(authority.patient)
    institutions = book.institutions()
    consents = book.consents(patients)
    today = datetime.now(UTC).date()
    active = [c for p in patients for c in active_for(consents, p, today)]
    requests = [c for c in consents if c.get("status") == "proposed"]
    holdings = sorted(((_recipient_label(f"Organization/{org}", institutions, language), count)
                       for org, count in book.holdings(patients).items()), key=lambda x: x[0])
    patient = book.resource(f"Patient/{authority.patient}")
    return {
        "patient_name": _display_name(patient, language),
        "basis": translate(language, f"basis_{authority.basis}"),
        "acting_self": authority.basis == "self",
        "holdings": holdings,
        "active": [_sentence(c, institutions, language) for c in active],
        "requests": [_sentence(c, institutions, language) for c in requests],
        "institutions": sorted(((f"Organization/{i}", _recipient_label(f"Organization/{i}", institutions, language))
                                for i in institutions), key=lambda x: x[1]),
        "classes": [(c, translate(language, "class_" + c.replace(":", "_"))) for c in RECIPIENT_CLASSES],
        "categories": [(c, translate(language, f"cat_{c}")) for c in GRANTABLE_CATEGORIES],
        "purposes": [(p, translate(language, f"purpose_{p}")) for p in PURPOSES],
        "sensitive_labels": [(s, translate(language, f"sens_{s}")) for s in SENSITIVE_LABELS],
        "default_end": date(today.year + 1, today.month, min(today.day, 28)).isoformat(),
        "access": _access_rows(book.access_log(patients), institutions, language),
    }


def _voucher_view(page: ConsentPage, session: Session, book: ConsentBook, authority: Authority, language: str,
                  view: dict[str, Any]) -> dict[str, Any] | None:
    """The voucher panel: balance in HK$ and the latest claims, in the page's language."""
    if page.voucher is None:
        return None
    balance, claims = page.voucher(session, book.records_of(authority.patient))
    if balance is None:
        return None
    names = dict(view["institutions"])
    return {"balance": money(language, balance), "claims": [{
        "date": long_date(language, claim["service_date"]),
        "institution": names.get(f"Organization/{claim['institution']}", claim["institution"]),
        "service": claim["service"],
        "approved": money(language, claim["approved_hkd"]),
        "outcome": translate(language, "voucher_" + (claim["status"] if claim["status"] in ("voided", "refunded")
                                                     else claim["outcome"])),
    } for claim in claims]}


# --- changes -----------------------------------------------------------------------------------------


@contextmanager
def _acting(request: Request, csrf: str,
            interaction: str) -> Iterator[tuple[ConsentBook, Authority, PageSession, list[str], Evidence]]:
    """A change by the signed-in person: session, CSRF and authority checked, audited."""
    with _transaction(request, None) as (book, session):
        row = _signed_in(request, session)
        if row is None or not _csrf_ok(row, csrf):
            raise _Refused("csrf" if row is not None else "session_expired")
        authority = _chosen(book, row)
        if authority is None:
            raise _Refused("refused_no_authority")
        acting = authority.acting
    with _transaction(request, acting, audited=interaction) as (book, session):
        row = _signed_in(request, session)
        assert row is not None
        evidence = Evidence(acting, authority.basis, row.method, _address(request))
        yield book, authority, row, book.records_of(authority.patient), evidence


class _Refused(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _change(request: Request, csrf: str, action: Callable[[ConsentBook, Authority, list[str], Evidence], None],
            notice: str, interaction: str = "update") -> Response:
    try:
        with _acting(request, csrf, interaction) as (book, authority, _row, patients, evidence):
            action(book, authority, patients, evidence)
    except _Refused as refused:
        if refused.key == "session_expired":
            return _redirect("/consent?error=" + translate(_language(request), "session_expired"))
        return _redirect(f"/consent/home?error={refused.key}")
    except FhirError as exc:
        field = next(iter(exc.issues[0].expression), "") if exc.issues else ""
        key = ("not_found" if exc.status == 404 else "conflict" if exc.status == 409
               else FIELD_ERRORS.get(field, "form_invalid"))
        return _redirect(f"/consent/home?error={key}")
    _page(request).kick()
    return _redirect(f"/consent/home?notice={notice}")


@router.post("/grant")
def grant(request: Request, csrf: str = Form(""), recipient: str = Form(""), categories: list[str] = Form(default=[]),
          purposes: list[str] = Form(default=[]), end: str = Form(""), cross_border: str = Form(""),
          sensitive: list[str] = Form(default=[])) -> Response:
    def action(book: ConsentBook, authority: Authority, patients: list[str], evidence: Evidence) -> None:
        try:
            until = date.fromisoformat(end)
        except ValueError as exc:
            from fhir_exchange.errors import InvalidRequest

            raise InvalidRequest("the end date is not a date", expression=["end"]) from exc
        institutions = book.institutions()
        book.grant(authority.patient, Grant(recipient, categories, purposes, until, cross_border=cross_border == "yes",
                                            sensitive=sensitive),
                   evidence, {k: v["jurisdiction"] for k, v in institutions.items()})

    return _change(request, csrf, action, "granted_ok", "create")


@router.post("/consents/{consent_id}/withdraw")
def withdraw(request: Request, consent_id: str, csrf: str = Form("")) -> Response:
    return _change(request, csrf, lambda book, _a, patients, evidence: book.withdraw(consent_id, patients, evidence),
                   "withdrawn_ok")


@router.post("/requests/{consent_id}/approve")
def approve(request: Request, consent_id: str, csrf: str = Form("")) -> Response:
    return _change(request, csrf, lambda book, _a, patients, evidence: book.answer(consent_id, patients, evidence, approve=True),
                   "approved_ok")


@router.post("/requests/{consent_id}/decline")
def decline(request: Request, consent_id: str, csrf: str = Form("")) -> Response:
    return _change(request, csrf,
                   lambda book, _a, patients, evidence: book.answer(consent_id, patients, evidence, approve=False),
                   "declined_ok")


# --- development -------------------------------------------------------------------------------------


@router.get("/dev/messages", response_class=HTMLResponse)
def dev_messages(request: Request) -> Response:
    page = _page(request)
    if not page.development or not isinstance(page.sender, ConsoleSender):
        return HTMLResponse("Not found", status_code=404)
    language = _language(request)
    return _render(request, "dev.html", language, messages=list(page.sender.recent()))


@router.get("/static/consent.css")
def stylesheet() -> Response:
    return Response(STYLESHEET, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})
