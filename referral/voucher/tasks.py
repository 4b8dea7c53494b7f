"""The voucher work the Celery beat does (``baylink/worker.py`` calls these with a session and
Hong Kong's today). Each is idempotent: it works from "what has not been done yet" lists and
re-checks under the account's lock, and the ledger's unique (account, kind, period) refuses a
second credit for the same period; so running a task twice, or two workers at once, credits
nothing twice. Each call handles at most ``limit`` accounts and returns how many it changed;
the worker repeats it, a transaction per batch, until it returns 0.

- ``credit_annual``: the year's HK$2,000 (capped at the accumulation limit) on 1 January.
- ``credit_rewards``: HK$500 once a period for at least HK$1,000 spent on designated primary
  healthcare services in it (counted as approved less refunded, voided claims left out).
- ``expire_rewards``: what is left of a reward after its last usable day is written off with a
  ``reward-expiry`` entry.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from referral.voucher.claims import ensure_annual_credit
from referral.voucher.ledger import Ledger
from referral.voucher.rules import Rules


def credit_annual(session: Session, rules: Rules, today: date, now: datetime, *, limit: int = 500) -> int:
    ledger = Ledger(session)
    credited = 0
    for account_pk in ledger.accounts_without("annual-credit", str(today.year), limit):
        account = ledger.lock_pk(account_pk)
        if ensure_annual_credit(ledger, account, rules, today.year, now) is not None:
            credited += 1
    return credited


def credit_rewards(session: Session, rules: Rules, today: date, now: datetime, *, limit: int = 500) -> int:
    ledger = Ledger(session)
    credited = 0
    for period in rules.reward_periods():
        if period.start > today:
            continue
        value = period.rule.value
        threshold, amount = period.rule.amount("threshold"), period.rule.amount()
        for account_pk in ledger.spenders(value["designated_service_types"], period.start, period.end, period.id,
                                          threshold, limit - credited):
            account = ledger.lock_pk(account_pk)
            if ledger.has_entry(account.pk, "reward", period.id):
                continue
            if ledger.spent(account.pk, value["designated_service_types"], period.start, period.end) < threshold:
                continue  # a void or refund since the list was read
            lot = ledger.add_lot(account, period.id, amount, period.usable_until)
            ledger.post(account, "reward", amount, rule_version=rules.version_of(period.rule), effective=today, now=now,
                        lot=lot, period=period.id,
                        note=f"reward {period.id}: usable on designated primary healthcare until {period.usable_until}")
            credited += 1
        if credited >= limit:
            break
    return credited


def expire_rewards(session: Session, rules: Rules, today: date, now: datetime, *, limit: int = 500) -> int:
    ledger = Ledger(session)
    expired = 0
    for account_pk, lot_pk in ledger.lots_past(today, limit):
        account = ledger.lock_pk(account_pk)
        lot = ledger.lots([lot_pk])[lot_pk]
        if lot.expired:
            continue
        if lot.remaining > 0:
            reward = next((p.rule for p in rules.reward_periods() if p.id == lot.period), None)
            ledger.post(account, "reward-expiry", -lot.remaining, rule_version=rules.version_of(reward), effective=today,
                        now=now, lot=lot, period=lot.period, note=f"reward {lot.period} was usable until {lot.usable_until}")
        lot.expired = True
        session.flush()
        expired += 1
    return expired
