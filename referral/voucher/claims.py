"""Claims on a voucher account: submit (approve, approve in part, or refuse, with the reason),
void and refund. Each action runs in the caller's one transaction and owns it: the claim row,
its ledger entries and the account's balance commit together or not at all.

How a claim is decided, under the account's row lock:

1. The amount in HKD: as claimed, or RMB (ISO ``CNY``) times the conversion factor of the
   service month, rounded half-up to the cent; the factor, its month and both amounts are kept.
2. Eligibility (``eligibility.py``) on the service date; an ineligible claim is refused.
3. The year's annual credit, if this account has not had it yet (the beat usually has).
4. What may be paid: the regular balance, plus unexpired reward money if the service is a
   designated primary healthcare one, and at most what the optometry cap leaves in the
   person's two-year cycle. Reward money is spent first (it expires; regular money does not).
5. Approved = the least of the claim and those; ``partial`` says which limit cut it.

A void gives back everything the claim still holds; a refund gives back part of it (regular
money first, then reward money). Money given back to a reward lot that has since expired
expires again at once (a ``reward-expiry`` entry). Only the claiming institution may void or
refund its claim.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from fhir_exchange.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unprocessable
from fhir_exchange.service import FhirService
from referral.voucher.eligibility import Eligibility, EligibilityService
from referral.voucher.ledger import ZERO, Ledger
from referral.voucher.models import CENT, LedgerEntry, VoucherAccount, VoucherClaim
from referral.voucher.rules import ConversionFactors, Rule, Rules, optometry_window, to_hkd

HONG_KONG = timezone(timedelta(hours=8), "HKT")  # no daylight saving since 1979
CURRENCIES = {"HKD": "HKD", "CNY": "CNY", "RMB": "CNY"}  # RMB is accepted for ISO 4217 CNY


def hong_kong_day(moment: datetime) -> date:
    return moment.astimezone(HONG_KONG).date()


def hkd(value: Decimal) -> str:
    return f"HK${value:,.2f}"


def parse_amount(value: Any, field_name: str) -> Decimal:
    """A positive amount in whole cents, written as a JSON number (read exactly, never as a
    float) or a string; 400 naming the field otherwise."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise InvalidRequest(f"{field_name} must be an amount such as 150.00", expression=(field_name,))
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise InvalidRequest(f"{field_name} '{value}' is not an amount", expression=(field_name,)) from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidRequest(f"{field_name} must be more than zero (got {value})", expression=(field_name,))
    if amount != amount.quantize(CENT):
        raise InvalidRequest(f"{field_name} {value} has more than two decimal places (whole cents only)",
                             expression=(field_name,))
    if amount >= Decimal("10000000000"):
        raise InvalidRequest(f"{field_name} {value} is too large", expression=(field_name,))
    return amount.quantize(CENT)


def parse_currency(value: Any, field_name: str) -> str:
    currency = CURRENCIES.get(str(value).upper()) if isinstance(value, str) else None
    if currency is None:
        raise InvalidRequest(f"{field_name} '{value}' is not HKD or RMB (CNY)", expression=(field_name,))
    return currency


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    patient_id: str
    service_type: str
    service_date: date
    amount: Decimal
    currency: str  # HKD | CNY
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Allowance:
    """What an eligible person may spend on one service."""

    regular: Decimal
    reward: Decimal
    optometry_left: Decimal | None
    optometry_window: tuple[date, date] | None
    annual_credit_due: Decimal
    rules: tuple[Rule, ...]

    @property
    def available(self) -> Decimal:
        total = self.regular + self.reward
        return total if self.optometry_left is None else min(total, self.optometry_left)


def annual_credit(balance: Decimal, reward_balance: Decimal, amount: Decimal, limit: Decimal) -> Decimal:
    """The year's credit: the annual amount, but never lifting the (non-reward) balance above
    the accumulation limit: 7,000 → +1,000; 8,000 → +0."""
    return max(ZERO, min(amount, limit - (balance - reward_balance)))


def ensure_annual_credit(ledger: Ledger, account: VoucherAccount, rules: Rules, year: int, now: datetime) -> LedgerEntry | None:
    """Credit ``year``'s amount to the (locked) account unless it has had it: once per account
    and year, also when the balance is at the limit (a zero entry records that)."""
    period = str(year)
    if ledger.has_entry(account.pk, "annual-credit", period):
        return None
    new_year = date(year, 1, 1)
    amount_rule, limit_rule = rules.require("annual-amount", new_year), rules.require("accumulation-limit", new_year)
    amount, limit = amount_rule.amount(), limit_rule.amount()
    credit = annual_credit(account.balance, account.reward_balance, amount, limit)
    note = None if credit == amount else f"{hkd(credit)} of {hkd(amount)}: the accumulation limit is {hkd(limit)}"
    return ledger.post(account, "annual-credit", credit, rule_version=rules.version_of(amount_rule, limit_rule),
                       effective=new_year, now=now, period=period, note=note)


class ClaimService:
    def __init__(self, service: FhirService, rules: Rules, factors: ConversionFactors, now: datetime) -> None:
        self.service = service
        self.rules = rules
        self.factors = factors
        self.now = now
        self.today = hong_kong_day(now)
        self.ledger = Ledger(service.repo.session)
        self.eligibility = EligibilityService(service, rules)

    # --- what may be spent -------------------------------------------------------------------

    def allowance(self, account: VoucherAccount | None, eligibility: Eligibility, *, credited: bool = False) -> Allowance:
        """What the person may spend on this service, counting the year's credit if it is still
        due (so an eligibility check shows what a claim would find; ``credited``: the caller has
        just made sure of it). Reads only."""
        balance = account.balance if account else ZERO
        reward_balance = account.reward_balance if account else ZERO
        due = ZERO
        if not credited and (account is None
                             or not self.ledger.has_entry(account.pk, "annual-credit", str(self.today.year))):
            new_year = date(self.today.year, 1, 1)
            due = annual_credit(balance, reward_balance, self.rules.require("annual-amount", new_year).amount(),
                                self.rules.require("accumulation-limit", new_year).amount())
        day, service_type = eligibility.service_date, eligibility.service_type
        reward = ZERO
        applied: list[Rule] = []
        if account is not None and self.rules.designated(service_type, day):
            reward = sum((lot.remaining for lot in self.ledger.usable_lots(account.pk, max(day, self.today))), ZERO)
        left, window = None, None
        cap = self.rules.find("optometry-cap", day)
        if cap is not None and service_type in cap.value["service_types"]:
            assert eligibility.birth_year is not None and eligibility.minimum_age is not None
            window = optometry_window(cap, eligibility.birth_year, eligibility.minimum_age, day)
            spent = self.ledger.spent(account.pk, cap.value["service_types"], *window) if account else ZERO
            left = max(ZERO, cap.amount() - spent)
            applied.append(cap)
        return Allowance(balance - reward_balance + due, reward, left, window, due, tuple(applied))

    # --- submit --------------------------------------------------------------------------------

    def _in_hkd(self, request: ClaimRequest) -> tuple[Decimal, Decimal | None, str | None, Rule | None]:
        if request.currency == "HKD":
            return request.amount, None, None, None
        rule = self.rules.require("conversion", request.service_date)
        factor, month = self.factors.for_day(request.service_date)
        return to_hkd(request.amount, factor, rule), factor, month, rule

    def submit(self, request: ClaimRequest) -> VoucherClaim:
        repo = self.service.repo
        repo.require("Claim", "c")
        institution = self.eligibility.institution()
        if request.service_date > self.today:
            raise Unprocessable(f"service_date {request.service_date} is in the future (today is {self.today} in Hong Kong): "
                                "claim a service once it has been given", expression=("service_date",))
        claimed_hkd, factor, month, conversion = self._in_hkd(request)
        eligibility, _ = self.eligibility.check(request.patient_id, request.service_date, request.service_type,
                                                request.location)
        claim = VoucherClaim(
            id=str(uuid.uuid4()), patient_id=request.patient_id, institution=institution, location=request.location,
            service_type=request.service_type, service_date=request.service_date, currency=request.currency,
            claimed_amount=request.amount, conversion_factor=factor, factor_month=month, claimed_hkd=claimed_hkd,
            approved_hkd=ZERO, refunded_hkd=ZERO, created=self.now,
        )
        if not eligibility.eligible:
            claim.outcome, claim.status, claim.reason = "refused", "refused", f"refused: {eligibility.reasons()}"
            claim.rule_version = self.rules.version_of(*(self.rules.find(k, request.service_date) for k in ("eligibility-age",)))
            return self.ledger.add_claim(claim)
        assert eligibility.document is not None
        account, _ = self.ledger.open(eligibility.document.person_key(), eligibility.document.kind, self.now)
        self.ledger.link_patient(account, request.patient_id, self.now)
        ensure_annual_credit(self.ledger, account, self.rules, self.today.year, self.now)
        allowance = self.allowance(account, eligibility, credited=True)
        approved = min(claimed_hkd, allowance.available)
        claim.account_pk = account.pk
        claim.approved_hkd = approved
        claim.outcome, claim.reason = self._outcome(claimed_hkd, approved, allowance)
        claim.status = "refused" if approved == 0 else "active"
        reward_rule = self.rules.find("reward", request.service_date) if self.rules.designated(
            request.service_type, request.service_date) else None
        age_rule = self.rules.find("eligibility-age", request.service_date)
        claim.rule_version = self.rules.version_of(age_rule, *allowance.rules, reward_rule, conversion)
        self.ledger.add_claim(claim)
        self._draw(account, claim, approved)
        return claim

    @staticmethod
    def _outcome(claimed: Decimal, approved: Decimal, allowance: Allowance) -> tuple[str, str | None]:
        if approved == claimed:
            return "approved", None
        balance = allowance.regular + allowance.reward
        if allowance.optometry_left is not None and allowance.optometry_left < balance:
            start, end = allowance.optometry_window  # type: ignore[misc]
            limit = (f"the optometry limit leaves {hkd(allowance.optometry_left)} for the cycle {start} to {end}")
        else:
            limit = f"the voucher balance available for this service is {hkd(balance)}"
        if approved == 0:
            return "refused", f"refused: {limit}"
        return "partial", f"approved {hkd(approved)} of {hkd(claimed)}: {limit}"

    def _draw(self, account: VoucherAccount, claim: VoucherClaim, approved: Decimal) -> None:
        """Debit ``approved``: reward money first (the soonest to expire first), then regular."""
        remaining = approved
        if self.rules.designated(claim.service_type, claim.service_date):
            for lot in self.ledger.usable_lots(account.pk, max(claim.service_date, self.today)):
                take = min(lot.remaining, remaining)
                if take > 0:
                    self.ledger.post(account, "claim", -take, rule_version=claim.rule_version, effective=claim.service_date,
                                     now=self.now, claim=claim, lot=lot, note=f"reward {lot.period}")
                    remaining -= take
        if remaining > 0:
            self.ledger.post(account, "claim", -remaining, rule_version=claim.rule_version, effective=claim.service_date,
                             now=self.now, claim=claim)

    # --- void and refund -------------------------------------------------------------------------

    def _own_claim(self, claim_id: str) -> tuple[VoucherClaim, VoucherAccount]:
        """The caller's claim, with its account locked and the claim read afresh under the lock."""
        self.service.repo.require("Claim", "c")
        institution = self.eligibility.institution()
        claim = self.ledger.claim(claim_id)
        if claim is None:
            raise NotFound(f"voucher claim {claim_id} is not known")
        if claim.institution != institution:
            raise Forbidden(f"voucher claim {claim_id} was made by Organization/{claim.institution}: only the claiming "
                            "institution may void or refund it")
        if claim.account_pk is None or claim.outcome == "refused":
            raise Conflict(f"voucher claim {claim_id} was refused: nothing was paid, so there is nothing to give back")
        account = self.ledger.lock_pk(claim.account_pk)
        claim = self.ledger.claim(claim_id, refresh=True)
        assert claim is not None
        if claim.status == "voided":
            raise Conflict(f"voucher claim {claim_id} was already voided on {claim.voided:%Y-%m-%d}")
        return claim, account

    def void(self, claim_id: str, reason: str | None) -> VoucherClaim:
        claim, account = self._own_claim(claim_id)
        outstanding = self.ledger.outstanding(claim.pk)
        self._give_back(account, claim, "void", outstanding, reason)
        claim.status, claim.voided, claim.void_reason = "voided", self.now, reason
        self.service.repo.session.flush()
        return claim

    def refund(self, claim_id: str, amount: Decimal, reason: str | None) -> VoucherClaim:
        claim, account = self._own_claim(claim_id)
        left = claim.approved_hkd - claim.refunded_hkd
        if amount > left:
            raise Unprocessable(f"amount {hkd(amount)} is more than the claim still holds ({hkd(left)} of "
                                f"{hkd(claim.approved_hkd)} approved)", expression=("amount",))
        outstanding = self.ledger.outstanding(claim.pk)
        lots = self.ledger.lots([pk for pk in outstanding if pk is not None])
        # regular money first, then reward money, the latest to expire first
        order = sorted(outstanding, key=lambda pk: (pk is not None, -(lots[pk].usable_until.toordinal()) if pk else 0))
        portions: dict[int | None, Decimal] = {}
        remaining = amount
        for source in order:
            take = min(outstanding[source], remaining)
            if take > 0:
                portions[source] = take
                remaining -= take
        self._give_back(account, claim, "refund", portions, reason)
        claim.refunded_hkd = claim.refunded_hkd + amount
        self.service.repo.session.flush()
        return claim

    def _give_back(self, account: VoucherAccount, claim: VoucherClaim, kind: str, portions: dict[int | None, Decimal],
                   reason: str | None) -> None:
        lots = self.ledger.lots([pk for pk in portions if pk is not None])
        for source, amount in portions.items():
            if amount <= 0:
                continue
            lot = lots[source] if source is not None else None
            self.ledger.post(account, kind, amount, rule_version=claim.rule_version, effective=claim.service_date,
                             now=self.now, claim=claim, lot=lot, note=reason)
            if lot is not None and (lot.expired or lot.usable_until < self.today):
                self.ledger.post(account, "reward-expiry", -amount, rule_version=claim.rule_version,
                                 effective=self.today, now=self.now, claim=claim, lot=lot,
                                 note=f"reward {lot.period} was usable until {lot.usable_until}")
