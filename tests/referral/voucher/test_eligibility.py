"""Eligibility over HTTP, for the calling institution: the year someone turns 65, service points
the day before and the day their designation starts (an Organization, and a Location with dates
of its own), service types a point excludes or does not take, the FHIR shape, and refusals."""

from __future__ import annotations

from datetime import date

import pytest
from fhir.resources.R4B.coverageeligibilityresponse import CoverageEligibilityResponse

from tests.referral.voucher.support import (
    CHENXINGHAI,
    CKJ,
    LZY,
    QMH,
    SZH,
    clock,  # noqa: F401  (fixture)
    eligibility,
    headers,
    hkid,
    outcome_of,
    patient,
    put_patient,
    registry,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.usefixtures("registry", "clock")


def test_the_year_someone_turns_65(app, client) -> None:  # type: ignore[no-untyped-def]
    put_patient(app, client, patient("late", hkid("B", "111111"), "1961-12-31"))
    put_patient(app, client, patient("young", hkid("B", "222222"), "1962-01-01"))
    # born on 31 Dec 1961: 65 "in 2026", so from 1 Jan 2026, a year before the birthday itself
    assert eligibility(app, client, "late", "2026-01-01")["eligible"] is True
    assert eligibility(app, client, "late", "2025-12-31")["eligible"] is False
    young = eligibility(app, client, "young", "2026-11-24")
    assert young["eligible"] is False and young["balance"] is None
    assert young["reasons"] == ["born in 1962: not aged 65 or above in 2026 (eligible from 1 January 2027)"]


def test_a_service_point_from_the_day_its_designation_starts(app, client) -> None:  # type: ignore[no-untyped-def]
    put_patient(app, client, patient("p1", hkid("C", "123456")), institution=CHENXINGHAI)
    before = eligibility(app, client, "p1", "2024-02-18", institution=CHENXINGHAI)
    assert before["eligible"] is False
    assert [c["rule"] for c in before["checks"] if not c["passed"]] == ["service-point"]
    assert "only from 2024-02-19, not on 2024-02-18" in before["reasons"][0]
    on = eligibility(app, client, "p1", "2024-02-19", institution=CHENXINGHAI)
    assert on["eligible"] is True and on["service_point"] == f"Organization/{CHENXINGHAI}"
    assert on["balance"]["available"] == "2000.00" and on["balance"]["annual_credit_due"] == "2000.00"


def test_a_location_is_a_service_point_by_its_own_dates(app, client) -> None:  # type: ignore[no-untyped-def]
    put_patient(app, client, patient("p1", hkid("C", "654321")))
    location = {"location": f"Location/{LZY}"}
    # HKU-SZH itself since 2015; its Huawei Li Zhi Yuan centre only since 17 Apr 2023
    assert eligibility(app, client, "p1", "2023-04-16")["eligible"] is True
    before = eligibility(app, client, "p1", "2023-04-16", **location)
    assert before["eligible"] is False and before["service_point"] == f"Location/{LZY}"
    assert eligibility(app, client, "p1", "2023-04-17", **location)["eligible"] is True


def test_excluded_service_types_at_hku_szh(app, client) -> None:  # type: ignore[no-untyped-def]
    put_patient(app, client, patient("p1", hkid("D", "123456")))
    for service in ("inpatient", "prepaid", "day-surgery"):
        for where in ({}, {"location": f"Location/{LZY}"}):
            answer = eligibility(app, client, "p1", "2026-03-01", service, **where)
            assert answer["eligible"] is False, (service, where)
            assert [c["rule"] for c in answer["checks"] if not c["passed"]] == ["service-type"]
            assert "excluded there (inpatient, prepaid, day-surgery)" in answer["reasons"][0]
    for service in ("consultation", "dental", "optometry", "chronic-disease-management"):
        assert eligibility(app, client, "p1", "2026-03-01", service)["eligible"] is True, service


def test_a_dental_point_takes_only_dental_services(app, client) -> None:  # type: ignore[no-untyped-def]
    put_patient(app, client, patient("p1", hkid("D", "654321")), institution=CKJ)
    assert eligibility(app, client, "p1", "2026-03-01", "dental", institution=CKJ)["eligible"] is True
    assert eligibility(app, client, "p1", "2026-03-01", "dental-preventive", institution=CKJ)["eligible"] is True
    refused = eligibility(app, client, "p1", "2026-03-01", "consultation", institution=CKJ)
    assert refused["eligible"] is False
    assert refused["reasons"][0].endswith("takes vouchers only for dental services, not consultation")


def test_a_public_hospital_is_not_a_service_point(app, client) -> None:  # type: ignore[no-untyped-def]
    put_patient(app, client, patient("p1", hkid("E", "123456")), institution=QMH)
    answer = eligibility(app, client, "p1", "2026-03-01", institution=QMH)
    assert answer["eligible"] is False and "is not an Elderly Health Care Voucher service point" in answer["reasons"][0]


def test_no_hkid_no_vouchers(app, client) -> None:  # type: ignore[no-untyped-def]
    put_patient(app, client, patient("p1", None))
    answer = eligibility(app, client, "p1", "2026-03-01")
    assert answer["eligible"] is False
    assert "holds no Hong Kong Identity Card number nor Certificate of Exemption" in answer["reasons"][0]


def test_the_fhir_shape(app, client) -> None:  # type: ignore[no-untyped-def]
    put_patient(app, client, patient("p1", hkid("F", "123456")))
    request = {"resourceType": "CoverageEligibilityRequest", "id": "req-1", "status": "active", "purpose": ["validation"],
               "patient": {"reference": "Patient/p1"}, "servicedDate": "2026-03-01", "created": "2026-03-01",
               "insurer": {"display": "EHCV"}, "facility": {"reference": f"Location/{LZY}"},
               "item": [{"productOrService": {"coding": [{"system": "http://baylink.example.org/fhir/CodeSystem/ehcv-service-type",
                                                          "code": "inpatient"}]}}]}
    response = client.post("/vouchers/$eligibility", json=request, headers=headers(app, SZH))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    answer = response.json()
    CoverageEligibilityResponse.model_validate(answer)
    assert answer["insurance"][0]["inforce"] is False and answer["request"] == {"reference": "CoverageEligibilityRequest/req-1"}
    assert answer["error"][0]["code"]["coding"][0]["code"] == "service-type"
    request["item"][0]["productOrService"]["coding"][0]["code"] = "consultation"
    answer = client.post("/vouchers/$eligibility", json=request, headers=headers(app, SZH)).json()
    CoverageEligibilityResponse.model_validate(answer)
    assert answer["insurance"][0]["inforce"] is True and answer["disposition"] == "eligible"
    benefit = answer["insurance"][0]["item"][0]["benefit"][0]
    assert benefit["allowedMoney"] == {"value": 2000.00, "currency": "HKD"}
    assert b'"value":2000.00' in client.post("/vouchers/$eligibility", json=request, headers=headers(app, SZH)).content


def test_the_institution_must_see_the_patient(app, client) -> None:  # type: ignore[no-untyped-def]
    # Queen Mary holds the record and the patient has consented to nothing: HKU-SZH may not see it
    put_patient(app, client, patient("p1", hkid("G", "123456")), institution=QMH)
    response = client.get("/vouchers/eligibility", params={"patient": "Patient/p1", "date": "2026-03-01",
                                                           "service": "consultation"}, headers=headers(app, SZH))
    assert response.status_code == 404
    assert outcome_of(response)["diagnostics"] == "Patient/p1 is not known"


@pytest.mark.parametrize(("params", "field", "status"), [
    ({"date": "2026-03-01", "service": "consultation"}, "patient", 400),
    ({"patient": "Observation/x", "date": "2026-03-01", "service": "consultation"}, "patient", 400),
    ({"patient": "Patient/p1", "date": "01/03/2026", "service": "consultation"}, "date", 400),
    ({"patient": "Patient/p1", "date": "2026-03-01", "service": "massage"}, "service", 400),
    ({"patient": "Patient/p1", "date": "2026-03-01", "service": "consultation", "location": "Location/nowhere"}, "location", 404),
    ({"patient": "Patient/p1", "date": "2026-03-01", "service": "consultation",
      "location": "Location/sysu-first-affiliated-nansha"}, "location", 403),
])
def test_bad_requests_name_the_field(app, client, params, field, status) -> None:  # type: ignore[no-untyped-def]
    put_patient(app, client, patient("p1", hkid("H", "123456")))
    response = client.get("/vouchers/eligibility", params=params, headers=headers(app, SZH))
    assert response.status_code == status, response.text
    assert outcome_of(response)["expression"] == [field]


def test_scopes(app, client, anonymous_client) -> None:  # type: ignore[no-untyped-def]
    put_patient(app, client, patient("p1", hkid("J", "123456")))
    params = {"patient": "Patient/p1", "date": "2026-03-01", "service": "consultation"}
    assert anonymous_client.get("/vouchers/eligibility", params=params).status_code == 401
    response = client.get("/vouchers/eligibility", params=params, headers=headers(app, SZH, "system/Patient.r"))
    assert response.status_code == 403 and "CoverageEligibilityRequest.c" in outcome_of(response)["diagnostics"]
    response = client.get("/vouchers/eligibility", params=params,
                          headers=headers(app, SZH, "system/CoverageEligibilityRequest.c"))
    assert response.status_code == 403 and "system/Patient.r" in outcome_of(response)["diagnostics"]
    ok = client.get("/vouchers/eligibility", params=params,
                    headers=headers(app, SZH, "system/CoverageEligibilityRequest.c system/Patient.r"))
    assert ok.status_code == 200 and ok.json()["eligible"] is True


def test_date_defaults_to_today_in_hong_kong(app, client, clock) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    clock(date(2026, 1, 1))
    put_patient(app, client, patient("p1", hkid("K", "123456"), "1961-12-31"))
    response = client.get("/vouchers/eligibility", params={"patient": "Patient/p1", "service": "consultation"},
                          headers=headers(app, SZH))
    assert response.json()["service_date"] == "2026-01-01" and response.json()["eligible"] is True
