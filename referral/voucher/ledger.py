"""The voucher tables' repository: the only place with SQL on them.

It works in the session it is given (an API request's single transaction, or a task's).
``lock`` takes the account row with SELECT … FOR UPDATE: every change of a balance happens
under that lock, so concurrent claims on one account queue one behind another and none can
see a balance another is about to spend (SQLite, which has one writer at a time, needs no
lock). Entries are only inserted; ``post`` is the one way a balance changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from referral.voucher.models import (
    ENTRY_KINDS,
    LedgerEntry,
    RewardLot,
    VoucherAccount,
    VoucherAccountPatient,
    VoucherClaim,
)

ZERO = Decimal("0.00")


class LedgerInvariantError(RuntimeError):
    """A change would break the ledger (a negative balance, reward money beyond the balance):
    a bug in the caller, never a client's mistake; the transaction rolls back."""


@dataclass(frozen=True, slots=True)
class Totals:
    """What the ledger of one account adds up to, for checks (tests, operators)."""

    balance: Decimal
    reward_balance: Decimal
    entries_sum: Decimal
    reward_entries_sum: Decimal
    last_balance_after: Decimal | None
    lowest_balance_after: Decimal | None
    lots_remaining: Decimal

    @property
    def consistent(self) -> bool:
        return (self.balance == self.entries_sum == (self.last_balance_after or ZERO)
                and self.reward_balance == self.reward_entries_sum == self.lots_remaining
                and (self.lowest_balance_after is None or self.lowest_balance_after >= 0))


class Ledger:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _insert(self, table: Any) -> Any:
        dialect = self.session.get_bind().dialect.name
        return (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table))

    # --- accounts ----------------------------------------------------------------------------

    def lock(self, person_key: str) -> VoucherAccount | None:
        return self.session.execute(
            select(VoucherAccount).where(VoucherAccount.person_key == person_key)
            .with_for_update().execution_options(populate_existing=True)
        ).scalar_one_or_none()

    def lock_pk(self, account_pk: int) -> VoucherAccount:
        return self.session.execute(
            select(VoucherAccount).where(VoucherAccount.pk == account_pk)
            .with_for_update().execution_options(populate_existing=True)
        ).scalar_one()

    def find(self, person_key: str) -> VoucherAccount | None:
        return self.session.execute(
            select(VoucherAccount).where(VoucherAccount.person_key == person_key)
        ).scalar_one_or_none()

    def open(self, person_key: str, document_kind: str, now: datetime) -> tuple[VoucherAccount, bool]:
        """The person's account, locked; opened (empty) if they had none. Two requests opening
        the same account at once both end with the one row (INSERT … ON CONFLICT DO NOTHING)."""
        statement = self._insert(VoucherAccount.__table__).values(
            person_key=person_key, document_kind=document_kind, balance=ZERO, reward_balance=ZERO, opened=now, updated=now,
        ).on_conflict_do_nothing(index_elements=["person_key"])
        created = self.session.execute(statement).rowcount == 1
        account = self.lock(person_key)
        assert account is not None
        return account, created

    def link_patient(self, account: VoucherAccount, patient_id: str, now: datetime) -> None:
        statement = self._insert(VoucherAccountPatient.__table__).values(patient_id=patient_id, account_pk=account.pk, seen=now)
        self.session.execute(statement.on_conflict_do_update(
            index_elements=["patient_id"], set_={"account_pk": account.pk, "seen": now}))

    def account_of_patients(self, patient_ids: list[str]) -> VoucherAccount | None:
        """The account the first of ``patient_ids`` (in that order) that has led to one belongs to."""
        if not patient_ids:
            return None
        rows = self.session.execute(
            select(VoucherAccountPatient.patient_id, VoucherAccount)
            .join(VoucherAccount, VoucherAccount.pk == VoucherAccountPatient.account_pk)
            .where(VoucherAccountPatient.patient_id.in_(patient_ids))
        ).all()
        by_patient = {patient_id: account for patient_id, account in rows}
        return next((by_patient[p] for p in patient_ids if p in by_patient), None)

    # --- entries -----------------------------------------------------------------------------

    def post(self, account: VoucherAccount, kind: str, amount: Decimal, *, rule_version: str, effective: date,
             now: datetime, claim: VoucherClaim | None = None, lot: RewardLot | None = None,
             period: str | None = None, note: str | None = None) -> LedgerEntry:
        """Add one entry and move the (locked) account's balance by ``amount``; with ``lot``,
        the amount is reward money of that lot and its remainder moves too."""
        if kind not in ENTRY_KINDS:
            raise LedgerInvariantError(f"unknown entry kind {kind}")
        balance = account.balance + amount
        reward_balance = account.reward_balance + (amount if lot is not None else ZERO)
        if balance < 0 or reward_balance < 0 or reward_balance > balance:
            raise LedgerInvariantError(f"{kind} of {amount} would leave account {account.pk} at {balance} "
                                       f"(reward {reward_balance})")
        if lot is not None:
            remaining = lot.remaining + amount
            if remaining < 0 or remaining > lot.amount:
                raise LedgerInvariantError(f"{kind} of {amount} would leave reward {lot.period} at {remaining}")
            lot.remaining = remaining
        account.balance, account.reward_balance, account.updated = balance, reward_balance, now
        entry = LedgerEntry(account_pk=account.pk, kind=kind, amount=amount, balance_after=balance,
                            claim_pk=claim.pk if claim is not None else None, reward_pk=lot.pk if lot is not None else None,
                            period=period, rule_version=rule_version, effective=effective, created=now, note=note)
        self.session.add(entry)
        self.session.flush()
        return entry

    def has_entry(self, account_pk: int, kind: str, period: str) -> bool:
        return self.session.execute(
            select(exists().where(LedgerEntry.account_pk == account_pk, LedgerEntry.kind == kind, LedgerEntry.period == period))
        ).scalar_one()

    def entries(self, account_pk: int, limit: int | None = None) -> list[LedgerEntry]:
        statement = select(LedgerEntry).where(LedgerEntry.account_pk == account_pk).order_by(LedgerEntry.pk.desc())
        if limit:
            statement = statement.limit(limit)
        return list(reversed(self.session.execute(statement).scalars().all()))

    def claim_entries(self, claim_pk: int) -> list[LedgerEntry]:
        return list(self.session.execute(
            select(LedgerEntry).where(LedgerEntry.claim_pk == claim_pk).order_by(LedgerEntry.pk)
        ).scalars())

    def outstanding(self, claim_pk: int) -> dict[int | None, Decimal]:
        """What a claim still holds from each source (None: the regular balance; else a reward
        lot's pk): its debits less what voids and refunds have given back."""
        rows = self.session.execute(
            select(LedgerEntry.reward_pk, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.claim_pk == claim_pk, LedgerEntry.kind.in_(("claim", "void", "refund")))
            .group_by(LedgerEntry.reward_pk)
        ).all()
        return {reward_pk: -Decimal(total) for reward_pk, total in rows if total and -Decimal(total) > 0}

    # --- reward lots -------------------------------------------------------------------------

    def add_lot(self, account: VoucherAccount, period: str, amount: Decimal, usable_until: date) -> RewardLot:
        lot = RewardLot(account_pk=account.pk, period=period, amount=amount, remaining=ZERO, usable_until=usable_until,
                        expired=False)
        self.session.add(lot)
        self.session.flush()
        return lot

    def usable_lots(self, account_pk: int, day: date) -> list[RewardLot]:
        """Unexpired reward lots with money left that may pay for a service on ``day``, the
        soonest to expire first."""
        return list(self.session.execute(
            select(RewardLot).where(RewardLot.account_pk == account_pk, RewardLot.expired.is_(False),
                                    RewardLot.remaining > 0, RewardLot.usable_until >= day)
            .order_by(RewardLot.usable_until, RewardLot.pk).execution_options(populate_existing=True)
        ).scalars())

    def lots(self, pks: list[int]) -> dict[int, RewardLot]:
        rows = self.session.execute(select(RewardLot).where(RewardLot.pk.in_(pks)).execution_options(populate_existing=True))
        return {lot.pk: lot for lot in rows.scalars()}

    def lots_past(self, today: date, limit: int) -> list[tuple[int, int]]:
        """(account pk, lot pk) of unexpired lots whose last day has passed."""
        return [(a, p) for a, p in self.session.execute(
            select(RewardLot.account_pk, RewardLot.pk).where(RewardLot.expired.is_(False), RewardLot.usable_until < today)
            .order_by(RewardLot.pk).limit(limit)
        ).all()]

    # --- claims ------------------------------------------------------------------------------

    def add_claim(self, claim: VoucherClaim) -> VoucherClaim:
        self.session.add(claim)
        self.session.flush()
        return claim

    def claim(self, claim_id: str, *, refresh: bool = False) -> VoucherClaim | None:
        statement = select(VoucherClaim).where(VoucherClaim.id == claim_id)
        if refresh:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        return self.session.execute(statement).scalar_one_or_none()

    def recent_claims(self, account_pk: int, limit: int) -> list[VoucherClaim]:
        return list(self.session.execute(
            select(VoucherClaim).where(VoucherClaim.account_pk == account_pk)
            .order_by(VoucherClaim.created.desc(), VoucherClaim.pk.desc()).limit(limit)
        ).scalars())

    def spent(self, account_pk: int, service_types: list[str], start: date, end: date) -> Decimal:
        """Vouchers spent (approved less refunded, voided claims left out) on ``service_types``
        for services from ``start`` to ``end``."""
        approved, refunded = self.session.execute(
            select(func.sum(VoucherClaim.approved_hkd), func.sum(VoucherClaim.refunded_hkd))
            .where(VoucherClaim.account_pk == account_pk, VoucherClaim.status == "active",
                   VoucherClaim.service_type.in_(service_types), VoucherClaim.service_date.between(start, end))
        ).one()
        return (approved or ZERO) - (refunded or ZERO)

    # --- the beat's work lists ---------------------------------------------------------------

    def accounts_without(self, kind: str, period: str, limit: int) -> list[int]:
        """Accounts that have no entry of ``kind`` for ``period`` yet."""
        done = exists().where(LedgerEntry.account_pk == VoucherAccount.pk, LedgerEntry.kind == kind, LedgerEntry.period == period)
        return list(self.session.execute(
            select(VoucherAccount.pk).where(~done).order_by(VoucherAccount.pk).limit(limit)
        ).scalars())

    def spenders(self, service_types: list[str], start: date, end: date, period: str, threshold: Decimal,
                 limit: int) -> list[int]:
        """Accounts with at least ``threshold`` spent on ``service_types`` from ``start`` to
        ``end`` and no reward for ``period`` yet (compared in Python: exact on every backend)."""
        rewarded = exists().where(LedgerEntry.account_pk == VoucherClaim.account_pk, LedgerEntry.kind == "reward",
                                  LedgerEntry.period == period)
        rows = self.session.execute(
            select(VoucherClaim.account_pk, func.sum(VoucherClaim.approved_hkd), func.sum(VoucherClaim.refunded_hkd))
            .where(VoucherClaim.account_pk.is_not(None), VoucherClaim.status == "active",
                   VoucherClaim.service_type.in_(service_types), VoucherClaim.service_date.between(start, end), ~rewarded)
            .group_by(VoucherClaim.account_pk).order_by(VoucherClaim.account_pk)
        ).all()
        return [pk for pk, approved, refunded in rows if (approved or ZERO) - (refunded or ZERO) >= threshold][:limit]

    # --- checks ------------------------------------------------------------------------------

    def totals(self, account_pk: int) -> Totals:
        account = self.session.execute(
            select(VoucherAccount).where(VoucherAccount.pk == account_pk).execution_options(populate_existing=True)
        ).scalar_one()
        entries_sum, lowest = self.session.execute(
            select(func.sum(LedgerEntry.amount), func.min(LedgerEntry.balance_after)).where(LedgerEntry.account_pk == account_pk)
        ).one()
        reward_sum = self.session.execute(
            select(func.sum(LedgerEntry.amount)).where(LedgerEntry.account_pk == account_pk, LedgerEntry.reward_pk.is_not(None))
        ).scalar_one()
        last = self.session.execute(
            select(LedgerEntry.balance_after).where(LedgerEntry.account_pk == account_pk).order_by(LedgerEntry.pk.desc()).limit(1)
        ).scalar_one_or_none()
        lots = self.session.execute(
            select(func.sum(RewardLot.remaining)).where(and_(RewardLot.account_pk == account_pk))
        ).scalar_one()
        return Totals(account.balance, account.reward_balance, entries_sum or ZERO, reward_sum or ZERO, last, lowest,
                      lots or ZERO)
