"""The beat's voucher work: the annual credit at the accumulation limit, the reward at its
threshold and in the pilot's first (longer) period, reward money spent first and only on
designated services, its expiry, and every task run twice crediting nothing twice."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError

from baylink import settings as settings_module
from baylink import worker
from referral.voucher.rules import default_rules
from referral.voucher.tasks import credit_annual, credit_rewards, expire_rewards
from tests.referral.voucher.support import (
    SYSU,
    SZH,
    at,
    claim,
    clock,  # noqa: F401  (fixture)
    headers,
    hkid,
    ledger,
    patient,
    person_key,
    put_patient,
    registry,  # noqa: F401  (fixture)
    seed,
    totals,
)

RULES = default_rules()
pytestmark = pytest.mark.usefixtures("registry", "clock")


def _run(app, task, day: date) -> int:  # type: ignore[no-untyped-def]
    with ledger(app) as book:
        return task(book.session, RULES, day, at(day, 0))


def _entries(app, number: str) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    with ledger(app) as book:
        account = book.find(person_key(app, number))
        assert account is not None
        return [(e.kind, f"{e.amount:.2f}", f"{e.balance_after:.2f}") for e in book.entries(account.pk)]


def test_the_annual_credit_at_the_limit_and_only_once(app, client, clock) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    seven, eight = hkid("T", "100001"), hkid("T", "100002")
    years = {2023: "2000.00", 2024: "2000.00", 2025: "2000.00", 2026: "2000.00"}
    seed(app, seven, years)
    seed(app, eight, years)
    clock(date(2026, 12, 31))
    put_patient(app, client, patient("seven", seven))
    claim(app, client, "seven", "1000.00", "2026-12-31")
    assert totals(app, seven).balance == Decimal("7000.00")
    assert _run(app, credit_annual, date(2027, 1, 1)) == 2
    assert _entries(app, seven)[-1] == ("annual-credit", "1000.00", "8000.00")
    assert _entries(app, eight)[-1] == ("annual-credit", "0.00", "8000.00")  # at the limit: recorded, nothing added
    with ledger(app) as book:
        note = book.entries(book.find(person_key(app, seven)).pk)[-1].note  # type: ignore[union-attr]
    assert note == "HK$1,000.00 of HK$2,000.00: the accumulation limit is HK$8,000.00"
    before = (_entries(app, seven), _entries(app, eight))
    assert _run(app, credit_annual, date(2027, 1, 1)) == 0
    assert _run(app, credit_annual, date(2027, 6, 30)) == 0
    assert (_entries(app, seven), _entries(app, eight)) == before
    assert totals(app, seven).consistent and totals(app, eight).consistent
    # and the database itself refuses a second credit for the same account and year
    with pytest.raises(IntegrityError), ledger(app) as book:
        account = book.lock(person_key(app, seven))
        book.post(account, "annual-credit", Decimal("0.00"), rule_version="test", effective=date(2027, 1, 1),  # type: ignore[arg-type]
                  now=datetime.now(UTC), period="2027")


def test_a_claim_early_on_1_january_gets_the_years_credit_first(app, client, clock) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    number = hkid("T", "100003")
    seed(app, number, {2026: "2000.00"})
    clock(date(2027, 1, 1))  # before the beat has run
    put_patient(app, client, patient("p1", number))
    made = claim(app, client, "p1", "3000.00", "2027-01-01")
    assert made["approved_hkd"] == "3000.00"
    assert _entries(app, number)[-2:] == [("annual-credit", "2000.00", "4000.00"), ("claim", "-3000.00", "1000.00")]
    assert _run(app, credit_annual, date(2027, 1, 1)) == 0


def test_the_reward_threshold(app, client, clock) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    clock(date(2025, 6, 1))
    short, reached, other = hkid("R", "100001"), hkid("R", "100002"), hkid("R", "100003")
    for pid, number in (("short", short), ("reached", reached), ("other", other)):
        put_patient(app, client, patient(pid, number), institution=SYSU)
    claim(app, client, "short", "500.00", "2025-05-01", "preventive-care", institution=SYSU)
    claim(app, client, "short", "499.99", "2025-05-02", "chronic-disease-management", institution=SYSU)
    claim(app, client, "reached", "500.00", "2025-05-01", "preventive-care", institution=SYSU)
    claim(app, client, "reached", "500.00", "2025-05-02", "dental-preventive", institution=SYSU)
    claim(app, client, "other", "1500.00", "2025-05-01", "consultation", institution=SYSU)  # not designated
    assert _run(app, credit_rewards, date(2025, 6, 1)) == 1
    assert _entries(app, reached)[-1] == ("reward", "500.00", "1500.00")
    assert _entries(app, short)[-1][0] == "claim" and _entries(app, other)[-1][0] == "claim"
    with ledger(app) as book:
        account = book.find(person_key(app, reached))
        assert account is not None and account.reward_balance == Decimal("500.00")
        [lot] = book.usable_lots(account.pk, date(2026, 12, 31))
        assert (lot.period, lot.usable_until, lot.remaining) == ("2025", date(2026, 12, 31), Decimal("500.00"))
    assert _run(app, credit_rewards, date(2025, 6, 1)) == 0
    assert _run(app, credit_rewards, date(2025, 12, 31)) == 0  # at most once a period
    # one more cent and the threshold is reached
    claim(app, client, "short", "0.01", "2025-05-03", "preventive-care", institution=SYSU)
    assert _run(app, credit_rewards, date(2025, 6, 2)) == 1
    assert totals(app, short).reward_balance == Decimal("500.00")


def test_the_pilots_first_period_starts_on_13_november_2023(app, client, clock) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    clock(date(2024, 1, 10))
    number = hkid("R", "100004")
    put_patient(app, client, patient("p1", number))
    claim(app, client, "p1", "600.00", "2023-11-12", "preventive-care")  # before the pilot: does not count
    claim(app, client, "p1", "600.00", "2023-11-13", "preventive-care")
    assert _run(app, credit_rewards, date(2024, 1, 10)) == 0
    claim(app, client, "p1", "400.00", "2024-01-05", "preventive-care")
    assert _run(app, credit_rewards, date(2024, 1, 10)) == 1
    with ledger(app) as book:
        account = book.find(person_key(app, number))
        assert account is not None
        [lot] = book.usable_lots(account.pk, date(2025, 12, 31))
        assert (lot.period, lot.usable_until) == ("2023-11-13/2024-12-31", date(2025, 12, 31))


def test_reward_money_is_spent_first_only_on_designated_services_and_then_expires(app, client, clock) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    number = hkid("R", "100005")
    clock(date(2025, 6, 1))
    put_patient(app, client, patient("p1", number), institution=SYSU)
    claim(app, client, "p1", "1000.00", "2025-05-01", "preventive-care", institution=SYSU)
    assert _run(app, credit_rewards, date(2025, 6, 1)) == 1  # regular 1000 + reward 500
    consultation = claim(app, client, "p1", "1200.00", "2025-06-01", "consultation", institution=SYSU)
    assert (consultation["outcome"], consultation["approved_hkd"]) == ("partial", "1000.00")  # reward money not usable here
    preventive = claim(app, client, "p1", "200.00", "2025-06-01", "preventive-care", institution=SYSU)
    assert [(e["kind"], e["amount"], e["reward"]) for e in preventive["entries"]] == [("claim", "-200.00", "reward 2025")]
    voided = client.post(f"/vouchers/claims/{preventive['id']}/void", headers=headers(app, SYSU)).json()
    assert voided["entries"][-1]["kind"] == "void" and totals(app, number).reward_balance == Decimal("500.00")
    # 2026: the annual credit; a designated claim spends the reward first, then regular money
    clock(date(2026, 3, 1))
    spent = claim(app, client, "p1", "600.00", "2026-03-01", "chronic-disease-management", institution=SYSU)
    assert [(e["amount"], e["reward"]) for e in spent["entries"]] == [("-500.00", "reward 2025"), ("-100.00", None)]
    client.post(f"/vouchers/claims/{spent['id']}/refund", json={"amount": "150.00"}, headers=headers(app, SYSU))
    # the refund gave back the regular 100 first, then 50 of reward money
    assert totals(app, number).reward_balance == Decimal("50.00")
    assert _run(app, expire_rewards, date(2026, 12, 31)) == 0  # usable through 31 Dec 2026
    assert _run(app, expire_rewards, date(2027, 1, 1)) == 1
    assert _entries(app, number)[-1] == ("reward-expiry", "-50.00", "2000.00")
    assert _run(app, expire_rewards, date(2027, 1, 1)) == 0
    # a void after expiry gives the reward money back and it expires again at once
    clock(date(2027, 1, 2))
    client.post(f"/vouchers/claims/{spent['id']}/void", headers=headers(app, SYSU)).raise_for_status()
    assert _entries(app, number)[-2:] == [("void", "450.00", "2450.00"), ("reward-expiry", "-450.00", "2000.00")]
    ledger_totals = totals(app, number)
    assert ledger_totals.consistent and ledger_totals.reward_balance == Decimal("0.00")


@pytest.fixture
def configured(database_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BAYLINK_DATABASE_URL", database_url)
    settings_module.get_settings.cache_clear()
    yield database_url
    settings_module.get_settings.cache_clear()


def test_the_celery_tasks_run_eagerly_and_twice_safely(app, configured) -> None:  # type: ignore[no-untyped-def]
    with ledger(app) as book:
        book.open(person_key(app, hkid("W", "100001")), "hkid", datetime.now(UTC))
    assert worker.voucher_annual_credit.apply().get() == 1
    assert worker.voucher_annual_credit.apply().get() == 0
    assert tuple(worker.voucher_rewards.apply().get()) == (0, 0)
    assert totals(app, hkid("W", "100001")).balance == Decimal("2000.00")
    assert {"voucher-annual-credit", "voucher-rewards"} <= set(worker.celery_app.conf.beat_schedule)
    assert SZH  # the registry fixture ran: tasks do not need it
