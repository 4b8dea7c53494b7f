"""The voucher ledger's own tables: accounts, the Patient records that lead to them, claims,
reward lots, and the immutable ledger entries.

An account belongs to a person, not to a Patient record: its key is the keyed blind index
(HMAC-SHA256, ``fhir_exchange.crypto``) of the person's HKID or Certificate of Exemption, so
the person's records at different hospitals share one account and no identity number is
stored in clear. ``voucher_account_patient`` remembers which Patient ids have led to it.

Amounts are exact: ``Money`` is NUMERIC(12,2) on PostgreSQL and whole cents in an INTEGER on
SQLite (whose NUMERIC is a float; the conversion factor likewise, to six places); in Python
they are ``Decimal`` in HKD (a claim's claimed amount is in its own currency). Entries are
only ever inserted: a void or refund is a new entry reversing an earlier one.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from fhir_exchange.store.models import Base, PrimaryKey, UTCDateTime

CENT = Decimal("0.01")
ENTRY_KINDS = ("annual-credit", "reward", "claim", "void", "refund", "reward-expiry")


class Exact(TypeDecorator[Decimal]):
    """An exact decimal with ``scale`` places: NUMERIC(precision, scale) on PostgreSQL; on
    SQLite (whose NUMERIC is a float), the value times 10**scale in an INTEGER. Refuses a
    float, and a value with more places than ``scale``."""

    impl = Numeric(12, 2)
    cache_ok = True

    def __init__(self, precision: int = 12, scale: int = 2) -> None:
        super().__init__(precision, scale)
        self.precision, self.scale = precision, scale
        self.quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, (Decimal, int)) or isinstance(value, bool):
            raise TypeError(f"an exact decimal column takes a Decimal, not {type(value).__name__}")
        value = Decimal(value)
        if value != value.quantize(self.quantum):
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        return int(value.scaleb(self.scale)) if dialect.name == "sqlite" else value.quantize(self.quantum)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-self.scale).quantize(self.quantum)
        return Decimal(value).quantize(self.quantum)


class Money(Exact):
    """An amount to the cent (HKD, or a claim's own currency)."""

    cache_ok = True

    def __init__(self) -> None:
        super().__init__(12, 2)


class VoucherAccount(Base):
    """One person's voucher account. ``balance`` is what the entries sum to (``reward_balance``
    the part of it that is unexpired reward money); both change only with a new entry, under
    the row's lock (SELECT … FOR UPDATE)."""

    __tablename__ = "voucher_account"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("reward_balance >= 0 AND reward_balance <= balance", name="reward_within_balance"),
    )

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    person_key: Mapped[str] = mapped_column(String(64), unique=True)  # blind index of the identity document
    document_kind: Mapped[str] = mapped_column(String(16))  # hkid | coe: which document keys it
    balance: Mapped[Decimal] = mapped_column(Money())
    reward_balance: Mapped[Decimal] = mapped_column(Money())
    opened: Mapped[datetime] = mapped_column(UTCDateTime())
    updated: Mapped[datetime] = mapped_column(UTCDateTime())


class VoucherAccountPatient(Base):
    """A Patient record (at any institution) that has led to an account."""

    __tablename__ = "voucher_account_patient"
    __table_args__ = (Index("ix_voucher_account_patient_account", "account_pk"),)

    patient_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("voucher_account.pk"))
    seen: Mapped[datetime] = mapped_column(UTCDateTime())


class VoucherClaim(Base):
    """A claim as the institution made it and as it was decided. A refused claim is kept too
    (with no entries); a void or refund changes ``status`` / ``refunded_hkd`` here and adds
    entries to the ledger."""

    __tablename__ = "voucher_claim"
    __table_args__ = (
        Index("ix_voucher_claim_account_service", "account_pk", "service_date"),
        Index("ix_voucher_claim_institution_created", "institution", "created"),
        CheckConstraint("refunded_hkd <= approved_hkd", name="refund_within_approved"),
    )

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    account_pk: Mapped[int | None] = mapped_column(ForeignKey("voucher_account.pk"), nullable=True)
    patient_id: Mapped[str] = mapped_column(String(64))
    institution: Mapped[str] = mapped_column(String(64))  # the claiming Organization
    location: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the Location, when it is the service point
    service_type: Mapped[str] = mapped_column(String(64))
    service_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))  # ISO 4217: HKD | CNY
    claimed_amount: Mapped[Decimal] = mapped_column(Money())  # in ``currency``
    conversion_factor: Mapped[Decimal | None] = mapped_column(Exact(12, 6), nullable=True)  # HKD per CNY
    factor_month: Mapped[str | None] = mapped_column(String(7), nullable=True)
    claimed_hkd: Mapped[Decimal] = mapped_column(Money())
    approved_hkd: Mapped[Decimal] = mapped_column(Money())
    refunded_hkd: Mapped[Decimal] = mapped_column(Money())
    outcome: Mapped[str] = mapped_column(String(16))  # approved | partial | refused
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # active | voided | refused
    rule_version: Mapped[str] = mapped_column(String(200))
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    voided: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    void_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class RewardLot(Base):
    """One period's reward: what is left of it, and until when it may be spent."""

    __tablename__ = "voucher_reward"
    __table_args__ = (
        UniqueConstraint("account_pk", "period"),
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_within_amount"),
        Index("ix_voucher_reward_usable", "expired", "usable_until"),
    )

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("voucher_account.pk"))
    period: Mapped[str] = mapped_column(String(32))
    amount: Mapped[Decimal] = mapped_column(Money())
    remaining: Mapped[Decimal] = mapped_column(Money())
    usable_until: Mapped[date] = mapped_column(Date)
    expired: Mapped[bool] = mapped_column(Boolean, default=False)


class LedgerEntry(Base):
    """One immutable movement on an account: a credit (positive) or a debit (negative) in HKD,
    with the balance after it, the rules it was made under, and what it belongs to (the claim;
    the reward lot when it is reward money; the period of a credit). A credit happens once per
    account, kind and period (the unique constraint: NULL periods, for claims, never clash)."""

    __tablename__ = "voucher_entry"
    __table_args__ = (
        UniqueConstraint("account_pk", "kind", "period", name="uq_voucher_entry_once_per_period"),
        CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
        CheckConstraint("kind IN ('annual-credit', 'reward', 'claim', 'void', 'refund', 'reward-expiry')", name="kind"),
        Index("ix_voucher_entry_account", "account_pk", "pk"),
        Index("ix_voucher_entry_claim", "claim_pk"),
    )

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("voucher_account.pk"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money())
    balance_after: Mapped[Decimal] = mapped_column(Money())
    claim_pk: Mapped[int | None] = mapped_column(ForeignKey("voucher_claim.pk"), nullable=True)
    reward_pk: Mapped[int | None] = mapped_column(ForeignKey("voucher_reward.pk"), nullable=True)
    period: Mapped[str | None] = mapped_column(String(32), nullable=True)
    rule_version: Mapped[str] = mapped_column(String(200))
    effective: Mapped[date] = mapped_column(Date)  # the service date, or the day a credit is for
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
