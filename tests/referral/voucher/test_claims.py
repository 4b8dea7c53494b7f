"""Claims over HTTP: approved, partial and refused with the reason; the service-point start
date; RMB converted with the month's factor; the optometry cap across the two-year cycle;
void and refund reversals; one account for a person's records at two hospitals; who may
claim, void and read; and every refusal an OperationOutcome naming the field."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from fhir.resources.R4B.claimresponse import ClaimResponse

from referral.voucher.api import balance_for
from tests.referral.voucher.support import (
    LZY,
    SYSU,
    SZH,
    claim,
    clock,  # noqa: F401  (fixture)
    factors,  # noqa: F401  (fixture)
    headers,
    hkid,
    outcome_of,
    patient,
    put_patient,
    registry,  # noqa: F401  (fixture)
    seed,
    totals,
)

pytestmark = pytest.mark.usefixtures("registry", "clock")


def test_approved_partial_and_refused(app, client) -> None:  # type: ignore[no-untyped-def]
    number = hkid("A", "100001")
    put_patient(app, client, patient("p1", number))
    first = claim(app, client, "p1", "1500.00", "2026-11-20")
    assert (first["outcome"], first["approved_hkd"], first["reason"], first["status"]) == ("approved", "1500.00", None, "active")
    partial = claim(app, client, "p1", "800.00", "2026-11-21")
    assert (partial["outcome"], partial["approved_hkd"]) == ("partial", "500.00")
    assert partial["reason"] == ("approved HK$500.00 of HK$800.00: the voucher balance available for this service is "
                                 "HK$500.00")
    assert [e["balance_after"] for e in partial["entries"]] == ["0.00"]
    refused = claim(app, client, "p1", "100.00", "2026-11-22")
    assert (refused["outcome"], refused["approved_hkd"], refused["entries"]) == ("refused", "0.00", [])
    assert refused["reason"] == "refused: the voucher balance available for this service is HK$0.00"
    ledger = totals(app, number)
    assert ledger.consistent and ledger.balance == Decimal("0.00")


def test_claims_the_day_before_and_the_day_a_service_point_starts(app, client, clock) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    clock(date(2023, 5, 1))
    put_patient(app, client, patient("p1", hkid("A", "100002")))
    before = claim(app, client, "p1", "200.00", "2023-04-16", location=f"Location/{LZY}")
    assert before["outcome"] == "refused" and before["location"] == f"Location/{LZY}"
    assert "only from 2023-04-17, not on 2023-04-16" in before["reason"]
    on = claim(app, client, "p1", "200.00", "2023-04-17", location=f"Location/{LZY}")
    assert on["outcome"] == "approved" and on["entries"][0]["balance_after"] == "1800.00"


def test_excluded_services_at_hku_szh_are_refused(app, client) -> None:  # type: ignore[no-untyped-def]
    put_patient(app, client, patient("p1", hkid("A", "100003")))
    for service in ("inpatient", "prepaid", "day-surgery"):
        refused = claim(app, client, "p1", "300.00", "2026-11-01", service)
        assert refused["outcome"] == "refused" and "excluded there" in refused["reason"], refused
    assert claim(app, client, "p1", "300.00", "2026-11-01", "consultation")["outcome"] == "approved"


def test_rmb_is_converted_with_the_months_factor(app, client, factors) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    factors({"2026-10": "1.0865", "2026-11": "1.0864"})
    put_patient(app, client, patient("p1", hkid("A", "100004")))
    october = claim(app, client, "p1", "10.00", "2026-10-31", currency="RMB")
    assert october["claimed"] == {"amount": "10.00", "currency": "CNY"}
    assert (october["conversion_factor"], october["factor_month"], october["claimed_hkd"], october["approved_hkd"]) == (
        "1.0865", "2026-10", "10.87", "10.87")  # 10.865 rounded half-up
    stored = client.get(f"/vouchers/claims/{october['id']}", headers=headers(app, SZH)).json()
    assert (stored["conversion_factor"], stored["claimed"]["amount"], stored["claimed_hkd"]) == ("1.0865", "10.00", "10.87")
    november = claim(app, client, "p1", "10.00", "2026-11-01", currency="CNY")
    assert (november["factor_month"], november["claimed_hkd"]) == ("2026-11", "10.86")
    missing = client.post("/vouchers/claims", headers=headers(app, SZH), json={
        "patient": "Patient/p1", "service_type": "consultation", "service_date": "2026-09-30", "amount": "10.00",
        "currency": "RMB"})
    assert missing.status_code == 422
    issue = outcome_of(missing)
    assert issue["expression"] == ["service_date"] and "no RMB conversion factor is recorded for 2026-09" in issue["diagnostics"]


def test_optometry_across_the_two_year_cycle(app, client, clock) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    clock(date(2025, 2, 1))
    number = hkid("A", "100005")
    seed(app, number, {2022: "2000.00", 2023: "2000.00", 2024: "2000.00"})
    put_patient(app, client, patient("p1", number, "1950-03-04"), institution=SYSU)
    first = claim(app, client, "p1", "1500.00", "2024-06-01", "optometry", institution=SYSU)
    assert first["outcome"] == "approved"
    capped = claim(app, client, "p1", "800.00", "2024-12-31", "optometry", institution=SYSU)
    assert (capped["outcome"], capped["approved_hkd"]) == ("partial", "500.00")
    assert capped["reason"] == ("approved HK$500.00 of HK$800.00: the optometry limit leaves HK$500.00 for the cycle "
                                "2023-01-01 to 2024-12-31")
    assert claim(app, client, "p1", "100.00", "2024-12-31", "optometry", institution=SYSU)["outcome"] == "refused"
    # 1 Jan 2025 starts the next cycle (2025-2026) for someone eligible in 2019
    assert claim(app, client, "p1", "2000.00", "2025-01-01", "optometry", institution=SYSU)["approved_hkd"] == "2000.00"
    # other services are not capped
    assert claim(app, client, "p1", "1000.00", "2025-01-02", "consultation", institution=SYSU)["outcome"] == "approved"
    # voiding a claim frees its part of the cap
    client.post(f"/vouchers/claims/{first['id']}/void", headers=headers(app, SYSU)).raise_for_status()
    assert claim(app, client, "p1", "1000.00", "2024-07-01", "optometry", institution=SYSU)["outcome"] == "approved"
    assert totals(app, number).consistent


def test_optometry_cycles_follow_the_year_the_person_became_eligible(app, client, clock) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    clock(date(2025, 2, 1))
    number = hkid("A", "100006")
    seed(app, number, {2024: "2000.00"})
    put_patient(app, client, patient("p1", number, "1959-05-05"), institution=SYSU)  # 65 in 2024: cycles 2024-2025, 2026-2027
    assert claim(app, client, "p1", "1500.00", "2024-12-31", "optometry", institution=SYSU)["outcome"] == "approved"
    same_cycle = claim(app, client, "p1", "1000.00", "2025-01-01", "optometry", institution=SYSU)
    assert (same_cycle["outcome"], same_cycle["approved_hkd"]) == ("partial", "500.00")
    assert "for the cycle 2024-01-01 to 2025-12-31" in same_cycle["reason"]


def test_void_and_refund_reverse_entries(app, client) -> None:  # type: ignore[no-untyped-def]
    number = hkid("A", "100007")
    put_patient(app, client, patient("p1", number))
    made = claim(app, client, "p1", "500.00", "2026-11-01")
    szh = headers(app, SZH)
    refund = client.post(f"/vouchers/claims/{made['id']}/refund", json={"amount": "200.00", "reason": "one session not given"},
                         headers=szh)
    assert refund.status_code == 200, refund.text
    assert refund.json()["refunded_hkd"] == "200.00"
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in refund.json()["entries"]] == [
        ("claim", "-500.00", "1500.00"), ("refund", "200.00", "1700.00")]
    too_much = client.post(f"/vouchers/claims/{made['id']}/refund", json={"amount": "300.01"}, headers=szh)
    assert too_much.status_code == 422 and outcome_of(too_much)["expression"] == ["amount"]
    assert "more than the claim still holds (HK$300.00" in outcome_of(too_much)["diagnostics"]
    other = client.post(f"/vouchers/claims/{made['id']}/void", headers=headers(app, SYSU))
    assert other.status_code == 403 and "only the claiming institution" in outcome_of(other)["diagnostics"]
    assert client.get(f"/vouchers/claims/{made['id']}", headers=headers(app, SYSU)).status_code == 404
    voided = client.post(f"/vouchers/claims/{made['id']}/void", json={"reason": "entered for the wrong patient"}, headers=szh)
    assert voided.status_code == 200, voided.text
    body = voided.json()
    assert (body["status"], body["void_reason"]) == ("voided", "entered for the wrong patient")
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in body["entries"]][-1] == ("void", "300.00", "2000.00")
    again = client.post(f"/vouchers/claims/{made['id']}/void", headers=szh)
    assert again.status_code == 409 and "already voided" in outcome_of(again)["diagnostics"]
    assert client.post(f"/vouchers/claims/{made['id']}/refund", json={"amount": "1.00"}, headers=szh).status_code == 409
    read = client.get(f"/vouchers/claims/{made['id']}", headers=szh).json()
    assert read["status"] == "voided" and len(read["entries"]) == 3
    ledger = totals(app, number)
    assert ledger.consistent and ledger.balance == Decimal("2000.00")
    refused = claim(app, client, "p1", "100.00", "2026-11-01", "inpatient")
    assert client.post(f"/vouchers/claims/{refused['id']}/void", headers=szh).status_code == 409
    assert client.post("/vouchers/claims/no-such-claim/void", headers=szh).status_code == 404


def test_one_account_for_a_persons_records_at_two_hospitals(app, client) -> None:  # type: ignore[no-untyped-def]
    number = hkid("A", "100008")
    put_patient(app, client, patient("at-szh", number))
    put_patient(app, client, patient("at-sysu", number.replace("(", "").replace(")", "")), institution=SYSU)
    claim(app, client, "at-szh", "500.00", "2026-11-01")
    at_sysu = claim(app, client, "at-sysu", "300.00", "2026-11-02", institution=SYSU)
    assert at_sysu["entries"][0]["balance_after"] == "1200.00"
    with app.state.fhir.sessions() as session:
        balance, recent = balance_for(session, ["nobody", "at-sysu"])
        assert balance == Decimal("1200.00")
        assert [(c["institution"], c["approved_hkd"]) for c in recent] == [(SYSU, Decimal("300.00")), (SZH, Decimal("500.00"))]
        assert balance_for(session, ["nobody"]) == (None, [])


def test_the_fhir_claim(app, client) -> None:  # type: ignore[no-untyped-def]
    put_patient(app, client, patient("p1", hkid("A", "100009")))
    body = {"resourceType": "Claim", "status": "active", "use": "claim", "patient": {"reference": "Patient/p1"},
            "created": "2026-11-20", "provider": {"reference": f"Organization/{SZH}"},
            "item": [{"sequence": 1, "servicedDate": "2026-11-20",
                      "productOrService": {"coding": [{"system": "http://baylink.example.org/fhir/CodeSystem/ehcv-service-type",
                                                       "code": "consultation"}]},
                      "net": {"value": 150.10, "currency": "HKD"}}]}
    response = client.post("/vouchers/claims", json=body, headers=headers(app, SZH))
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.headers["location"].startswith("/vouchers/claims/")
    answer = response.json()
    ClaimResponse.model_validate(answer)
    assert answer["outcome"] == "complete" and answer["total"][1]["amount"] == {"value": 150.10, "currency": "HKD"}
    assert b'"value":150.10' in response.content
    body["item"][0]["productOrService"]["coding"][0]["code"] = "inpatient"
    refused = client.post("/vouchers/claims", json=body, headers=headers(app, SZH)).json()
    ClaimResponse.model_validate(refused)
    assert refused["outcome"] == "error" and "excluded there" in refused["disposition"]


def test_who_may_claim(app, client, anonymous_client) -> None:  # type: ignore[no-untyped-def]
    put_patient(app, client, patient("p1", hkid("A", "100010")))
    body = {"patient": "Patient/p1", "service_type": "consultation", "service_date": "2026-11-01", "amount": "10.00"}
    assert anonymous_client.post("/vouchers/claims", json=body).status_code == 401
    no_claim = client.post("/vouchers/claims", json=body, headers=headers(app, SZH, "system/Patient.r"))
    assert no_claim.status_code == 403 and "system/Claim.c" in outcome_of(no_claim)["diagnostics"]
    no_patient = client.post("/vouchers/claims", json=body, headers=headers(app, SZH, "system/Claim.c"))
    assert no_patient.status_code == 403 and "system/Patient.r" in outcome_of(no_patient)["diagnostics"]
    ok = client.post("/vouchers/claims", json=body, headers=headers(app, SZH, "system/Claim.c system/Patient.r"))
    assert ok.status_code == 201
    reader = client.get(f"/vouchers/claims/{ok.json()['id']}", headers=headers(app, SZH, "system/Claim.c system/Patient.r"))
    assert reader.status_code == 403 and "system/Claim.r" in outcome_of(reader)["diagnostics"]


@pytest.mark.parametrize(("change", "field", "status"), [
    ({"patient": None}, "patient", 400),
    ({"patient": "Practitioner/x"}, "patient", 400),
    ({"patient": {"reference": "Patient/p1"}}, "patient", 400),
    ({"location": 5}, "location", 400),
    ({"amount": "12.345"}, "amount", 400),
    ({"amount": 12.345}, "amount", 400),
    ({"amount": "-5"}, "amount", 400),
    ({"amount": None}, "amount", 400),
    ({"currency": "USD"}, "currency", 400),
    ({"service_type": "spa"}, "service_type", 400),
    ({"service_date": "2026-13-01"}, "service_date", 400),
    ({"service_date": "2026-11-25"}, "service_date", 422),  # tomorrow in Hong Kong
    ({"location": "Location/nowhere"}, "location", 404),
])
def test_bad_claims_name_the_field(app, client, change, field, status) -> None:  # type: ignore[no-untyped-def]
    put_patient(app, client, patient("p1", hkid("A", "100011")))
    body = {"patient": "Patient/p1", "service_type": "consultation", "service_date": "2026-11-01", "amount": "10.00", **change}
    response = client.post("/vouchers/claims", json={k: v for k, v in body.items() if v is not None}, headers=headers(app, SZH))
    assert response.status_code == status, response.text
    assert outcome_of(response)["expression"] == [field]


def test_a_body_that_is_not_json(app, client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/vouchers/claims", content=b"{not json", headers={**headers(app, SZH),
                                                                           "Content-Type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in outcome_of(response)["diagnostics"]


SERVICE = {"coding": [{"code": "consultation"}]}


@pytest.mark.parametrize(("body", "field"), [
    ({"patient": "Patient/p1", "item": [{"servicedDate": "2026-11-01", "productOrService": SERVICE}]}, "Claim.patient"),
    ({"patient": {"reference": "Patient/p1"}, "item": {"servicedDate": "2026-11-01"}}, "Claim.item"),
    ({"patient": {"reference": "Patient/p1"}, "total": 5, "item": [{"servicedDate": "2026-11-01", "productOrService": SERVICE}]},
     "Claim.total.value"),
    ({"patient": {"reference": "Patient/p1"}, "item": [{"servicedDate": "2026-11-01", "net": {"value": 5}}]},
     "Claim.item[0].productOrService"),
])
def test_malformed_fhir_claims_are_400s(app, client, body, field) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/vouchers/claims", json={"resourceType": "Claim", **body}, headers=headers(app, SZH))
    assert response.status_code == 400, response.text
    assert outcome_of(response)["expression"] == [field]
    malformed = {"resourceType": "CoverageEligibilityRequest", "patient": {"reference": "Patient/p1"}, "item": {"x": 1}}
    response = client.post("/vouchers/$eligibility", json=malformed, headers=headers(app, SZH))
    assert response.status_code == 400
    assert outcome_of(response)["expression"] == ["CoverageEligibilityRequest.item[0].productOrService"]
