"""Concurrent claims never overdraw: 50 claims fired at once, each its own HTTP request to a
real server, from two institutions, at one person's account (which none of them has opened
yet). On PostgreSQL the account row's lock (SELECT … FOR UPDATE) queues them; SQLite has one
writer at a time. CI runs the PostgreSQL half (BAYLINK_TEST_REQUIRE_POSTGRES=1: never skipped)."""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal

import httpx
import pytest

from tests.referral.voucher.support import (
    SYSU,
    SZH,
    headers,
    hkid,
    ledger,
    patient,
    person_key,
    put_patient,
    registry,  # noqa: F401  (fixture)
    totals,
)

CLAIMS = 50
AMOUNT = Decimal("150.00")
STARTING_BALANCE = Decimal("2000.00")  # the year's credit, made when the first claim opens the account


@pytest.mark.usefixtures("registry")
def test_fifty_simultaneous_claims_never_overdraw(app, client, live_server: str) -> None:  # type: ignore[no-untyped-def]
    base = live_server.removesuffix("/fhir")
    number = hkid("Z", "100001")
    put_patient(app, client, patient("at-szh", number), institution=SZH)
    put_patient(app, client, patient("at-sysu", number), institution=SYSU)
    callers = [(SZH, "at-szh"), (SYSU, "at-sysu")]
    start = threading.Barrier(CLAIMS)
    results: list[httpx.Response | BaseException] = [None] * CLAIMS  # type: ignore[list-item]

    def fire(index: int) -> None:
        institution, pid = callers[index % 2]
        body = {"patient": f"Patient/{pid}", "service_type": "consultation", "service_date": "2026-11-20",
                "amount": f"{AMOUNT}"}
        try:
            with httpx.Client(base_url=base, timeout=120) as http:
                start.wait(timeout=60)
                results[index] = http.post("/vouchers/claims", json=body, headers=headers(app, institution))
        except BaseException as exc:  # reported below, with the others
            results[index] = exc

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(CLAIMS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    failures = [r for r in results if not isinstance(r, httpx.Response) or r.status_code != 201]
    assert not failures, [r if isinstance(r, BaseException) else (r.status_code, r.text) for r in failures]

    decided = [r.json() for r in results]  # type: ignore[union-attr]
    approved = sum((Decimal(c["approved_hkd"]) for c in decided), Decimal("0.00"))
    assert approved <= STARTING_BALANCE
    assert approved == STARTING_BALANCE  # 13 × 150 + one partial 50: every cent, and not one more
    assert Counter(c["outcome"] for c in decided) == {"approved": 13, "partial": 1, "refused": 36}
    assert {c["institution"] for c in decided if c["outcome"] != "refused"} <= {f"Organization/{SZH}", f"Organization/{SYSU}"}

    ledger_totals = totals(app, number)
    assert ledger_totals.consistent
    assert ledger_totals.balance == ledger_totals.entries_sum == ledger_totals.last_balance_after == Decimal("0.00")
    assert ledger_totals.lowest_balance_after == Decimal("0.00")
    with ledger(app) as book:
        account = book.find(person_key(app, number))
        assert account is not None
        entries = book.entries(account.pk)
        assert book.account_of_patients(["at-szh"]).pk == book.account_of_patients(["at-sysu"]).pk == account.pk  # type: ignore[union-attr]
    # the running balance is a chain: each entry moves the balance the one before it left
    running = Decimal("0.00")
    for entry in entries:
        running += entry.amount
        assert entry.balance_after == running >= 0
    assert [e.kind for e in entries].count("annual-credit") == 1
    assert -sum((e.amount for e in entries if e.kind == "claim"), Decimal("0.00")) == approved
