"""What the voucher tests share: the registry loaded, patients held by the institution that
treats them, a fixed clock for the voucher routes, and claims over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_exchange.identity.documents import hkid_check_character
from fhir_exchange.institutions.registry import load_registry
from referral.voucher.claims import HONG_KONG
from referral.voucher.eligibility import IdentityDocument
from referral.voucher.ledger import Ledger, Totals
from referral.voucher.rules import ConversionFactors
from tests.conftest import issue_token
from tests.consent.test_gate_rest import operator

HKID = "http://baylink.example.org/fhir/sid/hkid"
SZH, LZY = "hku-szh", "hku-szh-huawei-lzy"  # HKU-SZH and its Huawei Li Zhi Yuan community health centre (a Location)
SYSU = "sysu-first-affiliated"
CHENXINGHAI = "zhongshan-chenxinghai"
CKJ = "shenzhen-ckj-stomatological"  # dental only
QMH = "ha-queen-mary"  # a public hospital: not a voucher service point
CLAIM_SCOPES = "system/Claim.cr system/Patient.r system/CoverageEligibilityRequest.c"


def hkid(prefix: str, digits: str) -> str:
    return f"{prefix}{digits}({hkid_check_character(prefix, digits)})"


def headers(app, institution: str, scope: str = "system/*.cruds") -> dict[str, str]:  # type: ignore[no-untyped-def]
    token = issue_token(app, scope, institution=institution, client_id=f"{institution}-his")
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def patient(pid: str, number: str | None, birth: str | None = "1950-03-04", **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Patient", "id": pid, "name": [{"family": "CHAN", "given": ["Tai Man"]}],
                                **extra}
    if number:
        resource["identifier"] = [{"system": HKID, "value": number}]
    if birth:
        resource["birthDate"] = birth
    return resource


def put_patient(app, client: TestClient, resource: dict[str, Any], institution: str = SZH) -> None:  # type: ignore[no-untyped-def]
    """The treating institution holds the record (its custodian), so the gate lets it see it."""
    response = client.put(f"/fhir/Patient/{resource['id']}", json=resource, headers=headers(app, institution))
    assert response.status_code in (200, 201), response.text


def at(day: date, hour: int = 10) -> datetime:
    """``day`` at ``hour`` o'clock in Hong Kong, as the clock of the voucher routes gives it."""
    return datetime.combine(day, time(hour), tzinfo=HONG_KONG).astimezone(UTC)


@pytest.fixture
def registry(app) -> None:  # type: ignore[no-untyped-def]
    with operator(app) as service:
        load_registry(service)


@pytest.fixture
def clock(app, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Set the voucher routes' today: ``clock(date(2026, 3, 1))``."""
    def set_today(day: date) -> None:
        monkeypatch.setattr(app.state.vouchers, "clock", lambda: at(day))

    set_today(date(2026, 11, 24))
    return set_today


@pytest.fixture
def factors(app, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Set the RMB conversion factors: ``factors({"2026-03": "1.0865"})``."""
    def set_factors(table: dict[str, str]) -> None:
        monkeypatch.setattr(app.state.vouchers, "factors", ConversionFactors({m: Decimal(f) for m, f in table.items()}))

    return set_factors


def claim(app, client: TestClient, pid: str, amount: str, service_date: str, service_type: str = "consultation",  # type: ignore[no-untyped-def]
          institution: str = SZH, **extra: Any) -> dict[str, Any]:
    body = {"patient": f"Patient/{pid}", "service_type": service_type, "service_date": service_date, "amount": amount,
            "currency": "HKD", **extra}
    response = client.post("/vouchers/claims", json=body, headers=headers(app, institution))
    assert response.status_code == 201, response.text
    return response.json()


def eligibility(app, client: TestClient, pid: str, day: str, service: str = "consultation",  # type: ignore[no-untyped-def]
                institution: str = SZH, **params: str) -> dict[str, Any]:
    response = client.get("/vouchers/eligibility", params={"patient": f"Patient/{pid}", "date": day, "service": service,
                                                           **params}, headers=headers(app, institution))
    assert response.status_code == 200, response.text
    return response.json()


def person_key(app, number: str) -> str:  # type: ignore[no-untyped-def]
    return IdentityDocument("hkid", HKID, number).person_key()


@contextmanager
def ledger(app) -> Iterator[Ledger]:  # type: ignore[no-untyped-def]
    with app.state.fhir.sessions() as session, session.begin():
        yield Ledger(session)


def totals(app, number: str) -> Totals:  # type: ignore[no-untyped-def]
    with ledger(app) as book:
        account = book.find(person_key(app, number))
        assert account is not None
        return book.totals(account.pk)


def seed(app, number: str, credits: dict[int, str], now: datetime | None = None) -> None:  # type: ignore[no-untyped-def]
    """Open the person's account with annual credits of earlier years (year -> amount), as
    the beat would have made them."""
    from referral.voucher.rules import default_rules

    moment = now or datetime(2020, 1, 1, tzinfo=UTC)
    with ledger(app) as book:
        account, _ = book.open(person_key(app, number), "hkid", moment)
        for year, amount in sorted(credits.items()):
            book.post(account, "annual-credit", Decimal(amount), rule_version=default_rules().version_of(),
                      effective=date(year, 1, 1), now=moment, period=str(year), note="seeded by the test")


def outcome_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert response.headers["content-type"].startswith("application/fhir+json")
    return body["issue"][0]


def new_id() -> str:
    return uuid.uuid4().hex[:12]
