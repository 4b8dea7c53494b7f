"""What patients and institutions are told about consent, and what institutions may write:
consent requests (status ``proposed``) reach the patient's phone in their language; an
institution records an active consent only with its evidence, never forges the patient's
origin tag, and never alters a consent the patient decided on the page; an emergency
(break-glass) read tells each patient it touched; consents ending soon are announced once and
ended ones are marked inactive without losing their tags; the Celery beat runs all of it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consent.expiry import WARN_AHEAD, expire_consents, warn_expiring
from consent.policy import CROSS_BORDER_URL, DATA_CATEGORY
from consent.records import ORIGIN_SYSTEM, PAGE_CLIENT, ConsentBook, Evidence, Grant, page_context
from consent.web.messages import date_time
from fhir_exchange.institutions.registry import load_registry
from fhir_exchange.notify.models import OutboxMessage
from fhir_exchange.ports import AllowAllGate
from fhir_exchange.service import FhirService
from fhir_exchange.store.repository import CUSTODIAN_SYSTEM, FhirRepository
from tests.conftest import issue_token
from tests.consent.test_gate_rest import _as, operator

CHAN_PHONE = "+852 9123 4567"  # Patient/p-chan, who reads Traditional Chinese (zh-HK)
LEE_PHONE = "+853 6612 3456"  # Patient/p-lee, who reads English
SZH_ZH_HANT = "香港大學深圳醫院"
SZH_EN = "The University of Hong Kong-Shenzhen Hospital"
ORIGIN_PATIENT = {"system": ORIGIN_SYSTEM, "code": "patient"}
EVIDENCE = {"contentType": "application/pdf", "title": "signed consent form",
            "url": "https://records.example.org/forms/consent.pdf"}


def _patient(pid: str, phone: str, language: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": "CHAN", "given": ["Tai Man"]}],
            "birthDate": "1950-03-04",
            "telecom": [{"system": "email", "value": f"{pid}@example.org"},
                        {"system": "phone", "use": "home", "value": "+852 2000 0000"},
                        {"system": "phone", "use": "mobile", "value": phone}],
            "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": language}]}}]}


def _medicine(mid: str, pid: str) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": mid, "status": "active", "intent": "order",
            "medicationCodeableConcept": {"text": "metformin"}, "subject": {"reference": f"Patient/{pid}"}}


def _consent(pid: str, status: str, *, end: date | None = None, cid: str | None = None, **extra: Any) -> dict[str, Any]:
    provision: dict[str, Any] = {
        "type": "permit",
        "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                        "code": "IRCP"}]},
                   "reference": {"reference": "Organization/hku-szh"}}],
        "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
        "code": [{"coding": [{"system": DATA_CATEGORY, "code": "results"}]}],
        "extension": [{"url": CROSS_BORDER_URL, "valueBoolean": True}],
    }
    if end is not None:
        provision["period"] = {"start": "2026-01-01", "end": end.isoformat()}
    body = {"resourceType": "Consent", "status": status,
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{pid}"}, "provision": provision, **extra}
    if cid:
        body["id"] = cid
    return body


@pytest.fixture
def people(app, anonymous_client: TestClient) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    """The registry; two patients whose records Queen Mary holds; each caller's headers."""
    with operator(app) as service:
        load_registry(service)
    app.state.consent_page.sender.sent.clear()
    qmh = _as(app, anonymous_client, "ha-queen-mary")
    for resource in (_patient("p-chan", CHAN_PHONE, "zh-HK"), _patient("p-lee", LEE_PHONE, "en"),
                     _medicine("m-chan", "p-chan"), _medicine("m-lee", "p-lee")):
        response = anonymous_client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=qmh)
        assert response.status_code == 201, response.text
    return {"qmh": qmh, "szh": _as(app, anonymous_client, "hku-szh")}


def _outbox(app, kind: str | None = None) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    with app.state.fhir.sessions() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.pk)
        if kind:
            query = query.where(OutboxMessage.kind == kind)
        return list(session.execute(query).scalars())


def _messages(app, address: str) -> list[Any]:  # type: ignore[no-untyped-def]
    return app.state.consent_page.sender.to(address)


def _stored(app, cid: str) -> dict[str, Any] | None:  # type: ignore[no-untyped-def]
    with operator(app) as service:
        found = service.repo.load(service.repo.search_pks(service.parser.parse("Consent", [("_id", cid)])))
    return found[0].content if found else None


def _tags(resource: dict[str, Any]) -> list[dict[str, str]]:
    return [{"system": t["system"], "code": t["code"]} for t in resource["meta"].get("tag") or []]


@contextmanager
def _page(app, acting: str) -> Iterator[ConsentBook]:  # type: ignore[no-untyped-def]
    """The consent page's transaction for the signed-in person (consent/web/routes.py::_transaction)."""
    page = app.state.consent_page
    with page.sessions() as session, session.begin():
        repository = FhirRepository(session, page_context(acting), AllowAllGate(), write_rules=page.write_rules)
        yield ConsentBook(FhirService(repository, "http://testserver/fhir"))


def _evidence(pid: str) -> Evidence:
    return Evidence(f"Patient/{pid}", "self", "otp-sms", "203.0.113.7")


def _grant_on_page(app, pid: str, end: date) -> str:  # type: ignore[no-untyped-def]
    with _page(app, f"Patient/{pid}") as book:
        jurisdictions = {k: v["jurisdiction"] for k, v in book.institutions().items()}
        stored = book.grant(pid, Grant("Organization/hku-szh", ["results"], ["TREAT"], end, cross_border=True),
                            _evidence(pid), jurisdictions)
    return stored["id"]


def _assert_institutions_cannot_alter(app, client: TestClient, cid: str) -> None:  # type: ignore[no-untyped-def]
    before = _stored(app, cid)
    assert before is not None
    widened = {k: v for k, v in before.items() if k != "meta"}
    widened = {**widened, "status": "active", "provision": {**widened["provision"], "code": []}}
    custodian = next((t["code"] for t in _tags(before) if t["system"] == CUSTODIAN_SYSTEM), None)
    for institution in ("ha-queen-mary", "hku-szh"):  # the one holding the patient's records, and the recipient
        headers = _as(app, client, institution)
        refused = client.put(f"/fhir/Consent/{cid}", json=widened, headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["resourceType"] == "OperationOutcome"
        why = "only its custodian" if custodian not in (None, institution) else "patient's own decision"
        assert why in refused.json()["issue"][0]["diagnostics"]
        assert client.delete(f"/fhir/Consent/{cid}", headers=headers).status_code == 403
    assert _stored(app, cid) == before


# --- consent requests --------------------------------------------------------------------------------


@pytest.mark.parametrize(("pid", "phone", "language", "subject", "requester"), [
    ("p-chan", CHAN_PHONE, "zh-Hant", "有機構要求查閱你的紀錄", SZH_ZH_HANT),
    ("p-lee", LEE_PHONE, "en", "An institution asks to see your records", SZH_EN),
])
def test_a_consent_request_reaches_the_patients_phone_in_their_language(  # type: ignore[no-untyped-def]
        app, anonymous_client: TestClient, people, pid: str, phone: str, language: str, subject: str,
        requester: str) -> None:
    created = anonymous_client.post("/fhir/Consent", json=_consent(pid, "proposed"), headers=people["szh"])
    assert created.status_code == 201, created.text
    cid = created.json()["id"]

    (row,) = _outbox(app)
    assert (row.kind, row.recipient) == ("consent-request", f"Patient/{pid}")
    assert row.payload == {"consent": f"Consent/{cid}", "requester": "hku-szh"}
    assert CHAN_PHONE not in str(row.payload)  # the outbox holds references, not addresses
    # the write's own request delivered it (the FHIR write middleware kicks the outbox)
    assert row.sent and row.attempts == 1 and row.last_error is None
    (message,) = _messages(app, phone)
    assert (message.channel, message.language, message.kind, message.subject) == ("sms", language, "consent-request",
                                                                                   subject)
    assert requester in message.body
    assert _messages(app, "+852 2000 0000") == [] and _messages(app, f"{pid}@example.org") == []  # the mobile only

    # changing the request (still proposed) asks nothing new
    changed = _consent(pid, "proposed", cid=cid, end=date(2099, 12, 31))
    assert anonymous_client.put(f"/fhir/Consent/{cid}", json=changed, headers=people["szh"]).status_code == 200
    assert len(_outbox(app)) == 1 and len(_messages(app, phone)) == 1


def test_the_patients_language_chosen_on_the_page_wins(app, anonymous_client: TestClient, people) -> None:  # type: ignore[no-untyped-def]
    from consent.models import LanguagePreference

    with app.state.fhir.sessions() as session, session.begin():
        session.add(LanguagePreference(person="Patient/p-chan", language="en", updated=datetime.now(UTC)))
    assert anonymous_client.post("/fhir/Consent", json=_consent("p-chan", "proposed"), headers=people["szh"]).status_code == 201
    (message,) = _messages(app, CHAN_PHONE)
    assert message.language == "en" and SZH_EN in message.body


def test_a_refused_request_tells_no_one(app, anonymous_client: TestClient, people) -> None:  # type: ignore[no-untyped-def]
    forged = _consent("p-chan", "proposed", meta={"tag": [ORIGIN_PATIENT]})
    assert anonymous_client.post("/fhir/Consent", json=forged, headers=people["szh"]).status_code == 403
    assert _outbox(app) == [] and _messages(app, CHAN_PHONE) == []


def test_an_active_consent_needs_its_evidence(app, anonymous_client: TestClient, people) -> None:  # type: ignore[no-untyped-def]
    qmh = people["qmh"]
    refused = anonymous_client.post("/fhir/Consent", json=_consent("p-chan", "active"), headers=qmh)
    assert refused.status_code == 422, refused.text
    outcome = refused.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["Consent.sourceAttachment"]
    put = anonymous_client.put("/fhir/Consent/paper", json=_consent("p-chan", "active", cid="paper"), headers=qmh)
    assert put.status_code == 422
    assert _stored(app, "paper") is None
    with operator(app) as service:
        assert service.repo.search_pks(service.parser.parse("Consent", [("patient", "Patient/p-chan")])) == []
    assert _outbox(app) == []

    with_form = anonymous_client.put("/fhir/Consent/paper", headers=qmh,
                                     json=_consent("p-chan", "active", cid="paper", sourceAttachment=EVIDENCE))
    assert with_form.status_code == 201, with_form.text
    by_reference = anonymous_client.post("/fhir/Consent", headers=qmh, json=_consent(
        "p-chan", "active", sourceReference={"reference": "DocumentReference/signed-form-1"}))
    assert by_reference.status_code == 201, by_reference.text
    assert _outbox(app) == []  # recording what the patient signed asks the patient nothing
    # nor may an update drop the evidence
    bare = _consent("p-chan", "active", cid="paper", end=date(2099, 1, 1))
    assert anonymous_client.put("/fhir/Consent/paper", json=bare, headers=qmh).status_code == 422
    assert _stored(app, "paper")["meta"]["versionId"] == "1"  # type: ignore[index]


def test_an_institution_cannot_forge_the_patients_origin_tag(app, anonymous_client: TestClient, people) -> None:  # type: ignore[no-untyped-def]
    forged = _consent("p-chan", "active", cid="forged", sourceAttachment=EVIDENCE,
                      meta={"tag": [{**ORIGIN_PATIENT, "display": "decided by the patient"}]})
    for institution in ("qmh", "szh"):
        posted = anonymous_client.post("/fhir/Consent", json=forged, headers=people[institution])
        assert posted.status_code == 403, posted.text
        assert ORIGIN_SYSTEM in posted.json()["issue"][0]["diagnostics"]
        assert anonymous_client.put("/fhir/Consent/forged", json=forged, headers=people[institution]).status_code == 403
    assert _stored(app, "forged") is None
    # nor add it to a consent it holds
    honest = {k: v for k, v in forged.items() if k != "meta"}
    assert anonymous_client.put("/fhir/Consent/forged", json=honest, headers=people["qmh"]).status_code == 201
    assert anonymous_client.put("/fhir/Consent/forged", json=forged, headers=people["qmh"]).status_code == 403
    assert ORIGIN_PATIENT not in _tags(_stored(app, "forged"))  # type: ignore[arg-type]


def test_no_institution_alters_a_consent_the_patient_gave_on_the_page(app, anonymous_client: TestClient, people) -> None:  # type: ignore[no-untyped-def]
    cid = _grant_on_page(app, "p-chan", date(2099, 6, 30))
    stored = _stored(app, cid)
    assert stored is not None and ORIGIN_PATIENT in _tags(stored) and stored["status"] == "active"
    _assert_institutions_cannot_alter(app, anonymous_client, cid)
    # the patient still can, on the page
    with _page(app, "Patient/p-chan") as book:
        assert book.withdraw(cid, ["p-chan"], _evidence("p-chan"))["status"] == "inactive"
    _assert_institutions_cannot_alter(app, anonymous_client, cid)


def test_an_institution_cannot_pass_for_the_page_by_its_client_id(app, anonymous_client: TestClient, people) -> None:  # type: ignore[no-untyped-def]
    """A client registered under the page's client id (``baylink clients register --client-id``
    lets an operator choose it) still writes as its institution, under the institutions' rules."""
    cid = _grant_on_page(app, "p-chan", date(2099, 6, 30))
    before = _stored(app, cid)
    posing = {"Authorization": f"Bearer {issue_token(app, institution='ha-queen-mary', client_id=PAGE_CLIENT)}"}
    widened = {**{k: v for k, v in before.items() if k != "meta"}, "provision": {**before["provision"], "code": []}}  # type: ignore[union-attr]
    assert anonymous_client.put(f"/fhir/Consent/{cid}", json=widened, headers=posing).status_code == 403
    assert anonymous_client.delete(f"/fhir/Consent/{cid}", headers=posing).status_code == 403
    assert _stored(app, cid) == before
    forged = _consent("p-chan", "active", meta={"tag": [ORIGIN_PATIENT]})
    assert anonymous_client.post("/fhir/Consent", json=forged, headers=posing).status_code == 403
    assert anonymous_client.post("/fhir/Consent", json=_consent("p-chan", "active"), headers=posing).status_code == 422


def test_a_request_the_patient_answered_is_theirs_and_the_requester_is_told(  # type: ignore[no-untyped-def]
        app, anonymous_client: TestClient, people) -> None:
    cid = anonymous_client.post("/fhir/Consent", json=_consent("p-chan", "proposed", end=date(2099, 12, 31)),
                                headers=people["szh"]).json()["id"]
    with _page(app, "Patient/p-chan") as book:
        answered = book.answer(cid, ["p-chan"], _evidence("p-chan"), approve=True)
    assert answered["status"] == "active"
    assert {"system": CUSTODIAN_SYSTEM, "code": "hku-szh"} in _tags(answered)  # still held by the requester…
    assert ORIGIN_PATIENT in _tags(answered)
    _assert_institutions_cannot_alter(app, anonymous_client, cid)  # …which may no longer change it

    (told,) = _outbox(app, "consent-approved")
    assert told.recipient == "Organization/hku-szh"
    assert told.payload == {"consent": f"Consent/{cid}", "patient": "Patient/p-chan"}
    app.state.consent_page.kick()
    (told,) = _outbox(app, "consent-approved")
    assert told.sent  # the registry gives no address for the hospital: noted, not retried forever
    assert told.last_error == "no contact on record for the recipient"


# --- break-glass --------------------------------------------------------------------------------------


def _emergency(app, reason: str, roles: tuple[str, ...] = ("break-glass",)) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from fhir_exchange.auth.keys import generate_private_key_pem, on_behalf_of, public_jwks
    from fhir_exchange.auth.service import ClientRegistry

    pem = generate_private_key_pem()
    with app.state.fhir.sessions() as session, session.begin():
        client_id = ClientRegistry(session).register("hku-szh", public_jwks(pem), "system/*.cruds").client_id
    doctor = on_behalf_of(client_id, pem, "http://testserver/fhir", "PractitionerRole/er-1", list(roles))
    return {"Authorization": f"Bearer {issue_token(app, institution='hku-szh', client_id=client_id)}",
            "X-Purpose-Of-Use": "ETREAT", "X-On-Behalf-Of": doctor, "X-Break-Glass-Reason": reason}


def test_an_emergency_read_tells_the_patient(app, anonymous_client: TestClient, people) -> None:  # type: ignore[no-untyped-def]
    reason = "unconscious after a road accident"
    read = anonymous_client.get("/fhir/MedicationRequest/m-chan", headers=_emergency(app, reason))
    assert read.status_code == 200, read.text

    (row,) = _outbox(app, "break-glass")
    assert row.recipient == "Patient/p-chan" and row.sent  # an emergency read delivers at once (baylink/app.py)
    assert row.payload["reason"] == reason and row.payload["requester"] == "hku-szh"
    event_id = row.payload["event"].removeprefix("AuditEvent/")
    with operator(app) as service:
        event = service.read("AuditEvent", event_id).body
    assert event["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"
    assert event["purposeOfEvent"][0]["text"] == reason
    assert {"reference": "Patient/p-chan"} in [e["what"] for e in event["entity"]]
    assert {"reference": "MedicationRequest/m-chan/_history/1"} in [e["what"] for e in event["entity"]]
    assert row.payload["when"] == event["recorded"]  # an instant: worded at delivery, in the reader's language

    app.state.consent_page.kick()
    (message,) = _messages(app, CHAN_PHONE)
    assert (message.kind, message.language, message.subject) == ("break-glass", "zh-Hant", "你的紀錄曾被緊急查閱")
    assert reason in message.body and SZH_ZH_HANT in message.body
    # when, as the access log on the page shows it: Bay Area time (UTC+8), in the patient's language
    assert date_time("zh-Hant", event["recorded"]) in message.body
    assert _outbox(app, "break-glass")[0].sent


def test_an_emergency_search_tells_each_patient_it_touched_once(app, anonymous_client: TestClient, people) -> None:  # type: ignore[no-untyped-def]
    reason = "multiple casualties, triage"
    found = anonymous_client.get("/fhir/MedicationRequest", params={"_id": "m-chan,m-lee"},
                                 headers=_emergency(app, reason))
    assert found.status_code == 200 and found.json()["total"] == 2, found.text
    rows = _outbox(app, "break-glass")
    assert sorted(r.recipient for r in rows) == ["Patient/p-chan", "Patient/p-lee"]
    assert len({r.payload["event"] for r in rows}) == 1  # one request, one AuditEvent
    app.state.consent_page.kick()
    (chan,) = _messages(app, CHAN_PHONE)
    (lee,) = _messages(app, LEE_PHONE)
    assert reason in chan.body and SZH_ZH_HANT in chan.body
    assert lee.language == "en" and reason in lee.body and SZH_EN in lee.body
    with operator(app) as service:
        recorded = service.read("AuditEvent", rows[0].payload["event"].removeprefix("AuditEvent/")).body["recorded"]
    assert date_time("en", recorded) in lee.body and date_time("zh-Hant", recorded) in chan.body


def test_ordinary_reads_tell_no_one(app, anonymous_client: TestClient, people) -> None:  # type: ignore[no-untyped-def]
    assert anonymous_client.get("/fhir/MedicationRequest/m-chan", headers=people["qmh"]).status_code == 200
    with operator(app) as service:  # the read was audited, as every read of a patient's data is
        assert service.repo.search_pks(service.parser.parse("AuditEvent", [("entity", "Patient/p-chan")]))
    # an emergency purpose without the role that may break the glass releases nothing and tells no one
    as_nurse = _emergency(app, "nurse on the ward", roles=("nurse",))
    assert anonymous_client.get("/fhir/MedicationRequest/m-chan", headers=as_nurse).status_code == 404
    app.state.consent_page.kick()
    assert _outbox(app, "break-glass") == []
    assert _messages(app, CHAN_PHONE) == []


# --- expiry -------------------------------------------------------------------------------------------

TODAY = date(2031, 3, 1)


def test_a_consent_ending_soon_is_announced_once(app, anonymous_client: TestClient, people) -> None:  # type: ignore[no-untyped-def]
    qmh = people["qmh"]
    ends = {"soon": TODAY + timedelta(days=10), "edge": TODAY + WARN_AHEAD, "later": TODAY + timedelta(days=30),
            "past": TODAY - timedelta(days=1)}
    for cid, end in ends.items():
        body = _consent("p-chan", "active", cid=cid, end=end, sourceAttachment=EVIDENCE)
        assert anonymous_client.put(f"/fhir/Consent/{cid}", json=body, headers=qmh).status_code == 201
    asked = _consent("p-chan", "proposed", cid="asked", end=TODAY + timedelta(days=3))  # a request, not a consent
    assert anonymous_client.put("/fhir/Consent/asked", json=asked, headers=people["szh"]).status_code == 201
    assert anonymous_client.put("/fhir/Consent/open-ended", headers=qmh, json=_consent(
        "p-chan", "active", cid="open-ended", sourceAttachment=EVIDENCE)).status_code == 201

    with operator(app) as service:
        assert sorted(warn_expiring(service, TODAY)) == ["edge", "soon"]
    rows = _outbox(app, "consent-expiring")
    assert sorted((r.recipient, r.payload["consent"], r.payload["end"]) for r in rows) == [
        ("Patient/p-chan", "Consent/edge", ends["edge"].isoformat()),
        ("Patient/p-chan", "Consent/soon", ends["soon"].isoformat())]
    assert all(r.payload["recipient"] == "Organization/hku-szh" for r in rows)

    with operator(app) as service:  # again the same day, and the next day: nothing more
        warn_expiring(service, TODAY)
        warn_expiring(service, TODAY + timedelta(days=1))
    assert len(_outbox(app, "consent-expiring")) == 2

    app.state.consent_page.kick()
    bodies = [m.body for m in _messages(app, CHAN_PHONE) if m.kind == "consent-expiring"]
    assert len(bodies) == 2
    soon = next(b for b in bodies if "Consent/soon" in b)
    assert ends["soon"].isoformat() in soon and SZH_ZH_HANT in soon and "到期" in soon
    with operator(app) as service:
        warn_expiring(service, TODAY + timedelta(days=2))
    app.state.consent_page.kick()
    assert len([m for m in _messages(app, CHAN_PHONE) if m.kind == "consent-expiring"]) == 2


def test_ended_consents_turn_inactive_and_keep_their_tags(app, anonymous_client: TestClient, people) -> None:  # type: ignore[no-untyped-def]
    today = datetime.now(UTC).date()
    own = _grant_on_page(app, "p-chan", today)  # the patient's, ending today
    paper = _consent("p-chan", "active", cid="paper", end=today, sourceAttachment=EVIDENCE)
    assert anonymous_client.put("/fhir/Consent/paper", json=paper, headers=people["qmh"]).status_code == 201
    current = _consent("p-chan", "active", cid="current", end=today + timedelta(days=1), sourceAttachment=EVIDENCE)
    assert anonymous_client.put("/fhir/Consent/current", json=current, headers=people["qmh"]).status_code == 201
    before = {cid: _tags(_stored(app, cid)) for cid in (own, "paper")}  # type: ignore[arg-type]

    with operator(app) as service:
        assert expire_consents(service, today) == []  # still in force on its last day
    with operator(app) as service:
        assert sorted(expire_consents(service, today + timedelta(days=1))) == sorted([own, "paper"])
    with operator(app) as service:
        assert expire_consents(service, today + timedelta(days=1)) == []  # safe to run twice

    for cid in (own, "paper"):
        stored = _stored(app, cid)
        assert stored is not None and stored["status"] == "inactive" and stored["meta"]["versionId"] == "2"
        assert _tags(stored) == before[cid]
    assert ORIGIN_PATIENT in before[own]
    assert {"system": CUSTODIAN_SYSTEM, "code": "ha-queen-mary"} in before["paper"]
    assert _stored(app, "current")["status"] == "active"  # type: ignore[index]

    # expired by the job, the patient's consent is still the patient's…
    _assert_institutions_cannot_alter(app, anonymous_client, own)
    # …and the recorded one still Queen Mary's
    reopened = {**_consent("p-chan", "active", cid="paper", end=today + timedelta(days=90), sourceAttachment=EVIDENCE)}
    assert anonymous_client.put("/fhir/Consent/paper", json=reopened, headers=people["szh"]).status_code == 403
    assert anonymous_client.put("/fhir/Consent/paper", json=reopened, headers=people["qmh"]).status_code == 200


# --- the Celery tasks ---------------------------------------------------------------------------------


def test_the_beat_runs_the_consent_tasks() -> None:
    from baylink.worker import celery_app

    schedule = {entry["task"]: entry["schedule"] for entry in celery_app.conf.beat_schedule.values()}
    for name, at_most in (("baylink.deliver_notifications", timedelta(minutes=5)),
                          ("baylink.warn_expiring_consents", timedelta(days=1)),
                          ("baylink.expire_consents", timedelta(days=1))):
        assert name in celery_app.tasks, name
        assert name in schedule and timedelta(0) < schedule[name] <= at_most, name


@pytest.fixture
def configured(settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The worker's tasks read the database URL from the settings, as in production."""
    from baylink import settings as settings_module

    monkeypatch.setenv("BAYLINK_DATABASE_URL", settings.database_url)
    settings_module.get_settings.cache_clear()
    yield settings.database_url
    settings_module.get_settings.cache_clear()


def test_the_tasks_warn_expire_and_deliver(app, anonymous_client: TestClient, people, configured: str) -> None:  # type: ignore[no-untyped-def]
    from baylink import worker

    worker._sender().sent.clear()
    today = datetime.now(UTC).date()
    for cid, end in (("soon", today + timedelta(days=5)), ("ended", today - timedelta(days=1))):
        body = _consent("p-chan", "active", cid=cid, end=end, sourceAttachment=EVIDENCE)
        assert anonymous_client.put(f"/fhir/Consent/{cid}", json=body, headers=people["qmh"]).status_code == 201
    own = _grant_on_page(app, "p-lee", today + timedelta(days=3))

    assert sorted(worker.warn_expiring_consents.apply().get()) == sorted(["soon", own])
    # the task asked for delivery: the worker's sender has told both patients
    assert [m.kind for m in worker._sender().to(CHAN_PHONE)] == ["consent-expiring"]
    (lee,) = worker._sender().to(LEE_PHONE)
    assert lee.kind == "consent-expiring" and f"Consent/{own}" in lee.body and SZH_EN in lee.body
    assert all(r.sent for r in _outbox(app, "consent-expiring"))

    assert worker.warn_expiring_consents.apply().get()  # the consents are still ending…
    assert len(_outbox(app, "consent-expiring")) == 2  # …but nothing is queued twice
    assert worker.deliver_notifications.apply().get() == (0, 0)
    assert len(worker._sender().to(CHAN_PHONE)) == 1

    assert worker.expire_consents.apply().get() == ["ended"]
    assert worker.expire_consents.apply().get() == []
    assert _stored(app, "ended")["status"] == "inactive"  # type: ignore[index]
