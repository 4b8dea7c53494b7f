"""A cross-border referral end to end, through FHIR and the consent page, with two
institutions' clients in two jurisdictions: Queen Mary Hospital (Hong Kong) refers a patient
to the University of Hong Kong-Shenzhen Hospital (Shenzhen). The patient has not consented:
the referral waits and asks them; they approve on their page; the receiver can then read the
supporting information; it accepts, treats and completes with a summary that flows back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fhir_exchange.notify.models import OutboxMessage
from referral.sla import DEFAULT_SLA, add_working_days, due_by, flag_overdue
from tests.consent.test_gate_rest import _as, operator
from tests.consent.test_page import HKID, csrf_of, hkid, observation, patient, put, sign_in
from tests.consent.test_page import page as page  # the fixture

QMH, SZH = "ha-queen-mary", "hku-szh"


def _refer(app, page, pid: str, supporting: list[str], **extra) -> dict:  # type: ignore[no-untyped-def,type-arg]
    body = {"patient": f"Patient/{pid}", "recipient": f"Organization/{SZH}", "reason": "chest pain, for cardiology review",
            "priority": "urgent", "supportingInfo": supporting, **extra}
    response = page.post("/referrals", json=body, headers=_as(app, page, QMH))
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    request, task = (e["resource"] for e in response.json()["entry"])
    assert response.headers["location"].endswith(f"/Task/{task['id']}")
    assert request["resourceType"] == "ServiceRequest" and task["focus"]["reference"] == f"ServiceRequest/{request['id']}"
    return task


def _move(app, page, task_id: str, institution: str, status: str, **fields):  # type: ignore[no-untyped-def]
    headers = _as(app, page, institution)
    current = page.get(f"/fhir/Task/{task_id}", headers=_as(app, page, QMH))  # the initiator holds it
    assert current.status_code == 200, current.text
    body = {**current.json(), "status": status, **fields}
    body.pop("meta")
    return page.put(f"/fhir/Task/{task_id}", json=body, headers=headers)


def _messages(app, kind: str) -> list[OutboxMessage]:
    with app.state.fhir.sessions() as session:
        return list(session.query(OutboxMessage).filter(OutboxMessage.kind == kind))


def test_closed_loop_with_the_patients_consent(app, page) -> None:  # type: ignore[no-untyped-def]
    number = hkid("A", "303030")
    put(app, page, patient("r1", number, "+852 9300 0001"))
    put(app, page, observation("r1-ecg", "r1"))
    szh, qmh = _as(app, page, SZH), _as(app, page, QMH)

    task = _refer(app, page, "r1", ["Observation/r1-ecg"])
    assert task["status"] == "requested" and task["businessStatus"]["coding"][0]["code"] == "awaiting-patient-consent"
    assert page.get("/fhir/Observation/r1-ecg", headers=szh).status_code == 404
    assert [m.recipient for m in _messages(app, "referral-requested") if m.payload["task"] == f"Task/{task['id']}"] == [
        f"Organization/{SZH}"]
    # the receiver sees the referral itself (it is the owner) and can find it by owner and status
    found = page.get("/fhir/Task", params={"owner": f"Organization/{SZH}", "status": "requested"}, headers=szh).json()
    assert task["id"] in {e["resource"]["id"] for e in found.get("entry", [])}

    home = sign_in(app, page, HKID, number, "+852 9300 0001")
    assert "Queen Mary Hospital asks:" in home and "The University of Hong Kong-Shenzhen Hospital" in home
    consent_id = home.split('action="/consent/requests/')[1].split("/")[0]
    approved = page.post(f"/consent/requests/{consent_id}/approve", data={"csrf": csrf_of(home)})
    assert "Request approved." in approved.text
    assert page.get("/fhir/Observation/r1-ecg", headers=szh).status_code == 200
    assert page.get(f"/fhir/Task/{task['id']}", headers=qmh).json()["businessStatus"]["coding"][0]["code"] == \
        "patient-consent-given"

    for status in ("received", "accepted", "in-progress"):
        moved = _move(app, page, task["id"], SZH, status)
        assert moved.status_code == 200, moved.text
    incomplete = _move(app, page, task["id"], SZH, "completed")
    assert incomplete.status_code == 422 and incomplete.json()["issue"][0]["expression"] == ["Task.output"]

    summary = page.post("/fhir/Composition", headers=szh, json={
        "resourceType": "Composition", "status": "final", "date": "2026-11-20",
        "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5", "display": "Discharge summary"}]},
        "subject": {"reference": "Patient/r1"}, "author": [{"reference": f"Organization/{SZH}"}],
        "title": "Cardiology review", "section": [{"title": "Findings", "text": {"status": "generated",
                                                                                "div": "<div>Normal ECG.</div>"}}]})
    assert summary.status_code == 201, summary.text
    output = [{"type": {"text": "summary"}, "valueReference": {"reference": f"Composition/{summary.json()['id']}"}}]
    completed = _move(app, page, task["id"], SZH, "completed", output=output)
    assert completed.status_code == 200, completed.text
    # the summary flows back: the initiating institution reads it under the same consent
    assert page.get(f"/fhir/Composition/{summary.json()['id']}", headers=qmh).status_code == 200
    told = {(m.kind, m.recipient) for m in _messages(app, "referral-completed") if m.payload["task"] == f"Task/{task['id']}"}
    assert told == {("referral-completed", f"Organization/{QMH}")}
    # a closed referral goes nowhere
    reopened = _move(app, page, task["id"], SZH, "in-progress")
    assert reopened.status_code == 409 and "closed" in reopened.json()["issue"][0]["diagnostics"]


def test_each_side_moves_only_its_own_transitions(app, page) -> None:  # type: ignore[no-untyped-def]
    put(app, page, patient("r2", hkid("B", "313131"), "+852 9300 0002"))
    task = _refer(app, page, "r2", [])
    assert "businessStatus" not in task  # nothing to consent to: nothing waits

    by_initiator = _move(app, page, task["id"], QMH, "received")
    assert by_initiator.status_code == 403 and "receiving institution" in by_initiator.json()["issue"][0]["diagnostics"]
    skipping = _move(app, page, task["id"], SZH, "accepted")
    assert skipping.status_code == 409
    assert "may go to: received, on-hold" in skipping.json()["issue"][0]["diagnostics"]
    outsider = _move(app, page, task["id"], "mo-kiang-wu", "received")
    assert outsider.status_code == 403
    assert page.get(f"/fhir/Task/{task['id']}", headers=_as(app, page, "mo-kiang-wu")).status_code == 404
    assert _move(app, page, task["id"], SZH, "received").status_code == 200
    no_reason = _move(app, page, task["id"], SZH, "rejected")
    assert no_reason.status_code == 422 and no_reason.json()["issue"][0]["expression"] == ["Task.statusReason"]
    assert _move(app, page, task["id"], SZH, "on-hold").status_code == 200
    assert _move(app, page, task["id"], QMH, "received").status_code == 200  # either side takes it off hold
    assert _move(app, page, task["id"], QMH, "cancelled").status_code == 200
    assert _move(app, page, task["id"], SZH, "accepted").status_code == 409
    assert page.delete(f"/fhir/Task/{task['id']}", headers=_as(app, page, QMH)).status_code == 403
    history = page.get(f"/fhir/Task/{task['id']}/_history", headers=_as(app, page, QMH)).json()
    assert [e["resource"]["status"] for e in reversed(history["entry"])] == [
        "requested", "received", "on-hold", "received", "cancelled"]


def test_refused_referrals_name_what_is_wrong(app, page) -> None:  # type: ignore[no-untyped-def]
    put(app, page, patient("r3", hkid("C", "323232"), "+852 9300 0003"))
    qmh = _as(app, page, QMH)
    bad = page.post("/referrals", json={"patient": "r3", "recipient": f"Organization/{SZH}", "reason": "x"}, headers=qmh)
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["patient"]
    unknown = page.post("/referrals", json={"patient": "Patient/r3", "recipient": "Organization/nowhere", "reason": "x"},
                        headers=qmh)
    assert unknown.status_code == 404 and "nowhere" in unknown.json()["issue"][0]["diagnostics"]
    # a referral needing a Medicines Connect drug goes only to a Connect-designated institution
    not_designated = page.post("/referrals", headers=qmh, json={
        "patient": "Patient/r3", "recipient": "Organization/mo-kiang-wu", "reason": "needs a Connect drug", "programme": "mmdc"})
    assert not_designated.status_code == 422 and "not designated for the programme 'mmdc'" in \
        not_designated.json()["issue"][0]["diagnostics"]
    designated = page.post("/referrals", headers=qmh, json={
        "patient": "Patient/r3", "recipient": f"Organization/{SZH}", "reason": "needs a Connect drug", "programme": "mmdc"})
    assert designated.status_code == 201, designated.text
    with operator(app) as service:  # nothing half-written by the refused ones
        requests = service.repo.search_pks(service.parser.parse("ServiceRequest", [("subject", "Patient/r3")]))
    assert len(requests) == 1


def test_overdue_referrals_are_flagged_and_escalated_once(app, page) -> None:  # type: ignore[no-untyped-def]
    put(app, page, patient("r4", hkid("D", "333334"), "+852 9300 0004"))
    urgent = _refer(app, page, "r4", [])
    routine = page.post("/referrals", headers=_as(app, page, QMH), json={
        "patient": "Patient/r4", "recipient": f"Organization/{SZH}", "reason": "review", "priority": "routine"}).json()
    routine_task = routine["entry"][1]["resource"]
    authored = datetime.fromisoformat(urgent["authoredOn"].replace("Z", "+00:00"))
    with operator(app) as service:
        assert flag_overdue(service, authored + timedelta(hours=23), DEFAULT_SLA) == []
    with operator(app) as service:
        flagged = flag_overdue(service, authored + timedelta(hours=25), DEFAULT_SLA)
    assert urgent["id"] in flagged and routine_task["id"] not in flagged
    with operator(app) as service:
        assert urgent["id"] not in flag_overdue(service, authored + timedelta(hours=26), DEFAULT_SLA)
    escalations = {m.recipient for m in _messages(app, "referral-overdue") if m.payload["task"] == f"Task/{urgent['id']}"}
    assert escalations == {f"Organization/{SZH}", f"Organization/{QMH}"}
    task = page.get(f"/fhir/Task/{urgent['id']}", headers=_as(app, page, QMH)).json()
    assert task["businessStatus"]["coding"][0]["code"] == "overdue"
    # an accepted referral is never overdue
    assert _move(app, page, routine_task["id"], SZH, "received").status_code == 200
    assert _move(app, page, routine_task["id"], SZH, "accepted").status_code == 200
    with operator(app) as service:
        assert routine_task["id"] not in flag_overdue(service, authored + timedelta(days=30), DEFAULT_SLA)


def test_working_days_skip_the_weekend() -> None:
    friday = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert add_working_days(friday, 1) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday
    assert due_by(friday, "routine", DEFAULT_SLA) == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert due_by(friday, "urgent", DEFAULT_SLA) == friday + timedelta(hours=24)


def test_the_receiver_is_told_of_a_new_referral_and_the_initiator_of_each_move(app, page) -> None:  # type: ignore[no-untyped-def]
    with operator(app) as service:  # the institutions' contact points (the shipped registry holds none)
        for org, email in ((SZH, "referrals@hku-szh.example.org"), (QMH, "referrals@qmh.example.org")):
            current = service.read("Organization", org).body
            service.update("Organization", org, {**current, "telecom": [{"system": "email", "value": email}]})
    put(app, page, patient("r5", hkid("E", "343434"), "+852 9300 0005"))
    task = _refer(app, page, "r5", [])
    assert _move(app, page, task["id"], SZH, "received").status_code == 200
    sender = app.state.consent_page.sender
    to_receiver = sender.to("referrals@hku-szh.example.org")
    to_initiator = sender.to("referrals@qmh.example.org")
    assert [m.kind for m in to_receiver] == ["referral-requested"] and task["id"] in to_receiver[0].body
    assert [m.kind for m in to_initiator] == ["referral-received"] and "was received by institution hku-szh" in \
        to_initiator[0].body
    rows = _messages(app, "referral-requested") + _messages(app, "referral-received")
    assert all(m.sent and m.last_error is None for m in rows)
