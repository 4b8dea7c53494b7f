"""voucher ledger: accounts, claims, reward lots and ledger entries of the Elderly Health Care Voucher

Amounts are NUMERIC(12,2) on PostgreSQL and whole cents in an INTEGER on SQLite (referral.voucher.models.Money);
the conversion factor NUMERIC(12,6), or millionths in an INTEGER.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('voucher_account',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('person_key', sa.String(length=64), nullable=False),
    sa.Column('document_kind', sa.String(length=16), nullable=False),
    sa.Column('balance', sa.Numeric(precision=12, scale=2).with_variant(sa.BigInteger(), 'sqlite'), nullable=False),
    sa.Column('reward_balance', sa.Numeric(precision=12, scale=2).with_variant(sa.BigInteger(), 'sqlite'), nullable=False),
    sa.Column('opened', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('balance >= 0', name=op.f('ck_voucher_account_balance_not_negative')),
    sa.CheckConstraint('reward_balance >= 0 AND reward_balance <= balance', name=op.f('ck_voucher_account_reward_within_balance')),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_voucher_account')),
    sa.UniqueConstraint('person_key', name=op.f('uq_voucher_account_person_key'))
    )
    op.create_table('voucher_account_patient',
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('account_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('seen', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_pk'], ['voucher_account.pk'], name=op.f('fk_voucher_account_patient_account_pk_voucher_account')),
    sa.PrimaryKeyConstraint('patient_id', name=op.f('pk_voucher_account_patient'))
    )
    with op.batch_alter_table('voucher_account_patient', schema=None) as batch_op:
        batch_op.create_index('ix_voucher_account_patient_account', ['account_pk'], unique=False)

    op.create_table('voucher_claim',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('account_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('institution', sa.String(length=64), nullable=False),
    sa.Column('location', sa.String(length=64), nullable=True),
    sa.Column('service_type', sa.String(length=64), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('claimed_amount', sa.Numeric(precision=12, scale=2).with_variant(sa.BigInteger(), 'sqlite'), nullable=False),
    sa.Column('conversion_factor', sa.Numeric(precision=12, scale=6).with_variant(sa.BigInteger(), 'sqlite'), nullable=True),
    sa.Column('factor_month', sa.String(length=7), nullable=True),
    sa.Column('claimed_hkd', sa.Numeric(precision=12, scale=2).with_variant(sa.BigInteger(), 'sqlite'), nullable=False),
    sa.Column('approved_hkd', sa.Numeric(precision=12, scale=2).with_variant(sa.BigInteger(), 'sqlite'), nullable=False),
    sa.Column('refunded_hkd', sa.Numeric(precision=12, scale=2).with_variant(sa.BigInteger(), 'sqlite'), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('rule_version', sa.String(length=200), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('voided', sa.DateTime(timezone=True), nullable=True),
    sa.Column('void_reason', sa.Text(), nullable=True),
    sa.CheckConstraint('refunded_hkd <= approved_hkd', name=op.f('ck_voucher_claim_refund_within_approved')),
    sa.ForeignKeyConstraint(['account_pk'], ['voucher_account.pk'], name=op.f('fk_voucher_claim_account_pk_voucher_account')),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_voucher_claim')),
    sa.UniqueConstraint('id', name=op.f('uq_voucher_claim_id'))
    )
    with op.batch_alter_table('voucher_claim', schema=None) as batch_op:
        batch_op.create_index('ix_voucher_claim_account_service', ['account_pk', 'service_date'], unique=False)
        batch_op.create_index('ix_voucher_claim_institution_created', ['institution', 'created'], unique=False)

    op.create_table('voucher_reward',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period', sa.String(length=32), nullable=False),
    sa.Column('amount', sa.Numeric(precision=12, scale=2).with_variant(sa.BigInteger(), 'sqlite'), nullable=False),
    sa.Column('remaining', sa.Numeric(precision=12, scale=2).with_variant(sa.BigInteger(), 'sqlite'), nullable=False),
    sa.Column('usable_until', sa.Date(), nullable=False),
    sa.Column('expired', sa.Boolean(), nullable=False),
    sa.CheckConstraint('remaining >= 0 AND remaining <= amount', name=op.f('ck_voucher_reward_remaining_within_amount')),
    sa.ForeignKeyConstraint(['account_pk'], ['voucher_account.pk'], name=op.f('fk_voucher_reward_account_pk_voucher_account')),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_voucher_reward')),
    sa.UniqueConstraint('account_pk', 'period', name=op.f('uq_voucher_reward_account_pk'))
    )
    with op.batch_alter_table('voucher_reward', schema=None) as batch_op:
        batch_op.create_index('ix_voucher_reward_usable', ['expired', 'usable_until'], unique=False)

    op.create_table('voucher_entry',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.Numeric(precision=12, scale=2).with_variant(sa.BigInteger(), 'sqlite'), nullable=False),
    sa.Column('balance_after', sa.Numeric(precision=12, scale=2).with_variant(sa.BigInteger(), 'sqlite'), nullable=False),
    sa.Column('claim_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reward_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('period', sa.String(length=32), nullable=True),
    sa.Column('rule_version', sa.String(length=200), nullable=False),
    sa.Column('effective', sa.Date(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint("kind IN ('annual-credit', 'reward', 'claim', 'void', 'refund', 'reward-expiry')", name=op.f('ck_voucher_entry_kind')),
    sa.CheckConstraint('balance_after >= 0', name=op.f('ck_voucher_entry_balance_after_not_negative')),
    sa.ForeignKeyConstraint(['account_pk'], ['voucher_account.pk'], name=op.f('fk_voucher_entry_account_pk_voucher_account')),
    sa.ForeignKeyConstraint(['claim_pk'], ['voucher_claim.pk'], name=op.f('fk_voucher_entry_claim_pk_voucher_claim')),
    sa.ForeignKeyConstraint(['reward_pk'], ['voucher_reward.pk'], name=op.f('fk_voucher_entry_reward_pk_voucher_reward')),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_voucher_entry')),
    sa.UniqueConstraint('account_pk', 'kind', 'period', name='uq_voucher_entry_once_per_period')
    )
    with op.batch_alter_table('voucher_entry', schema=None) as batch_op:
        batch_op.create_index('ix_voucher_entry_account', ['account_pk', 'pk'], unique=False)
        batch_op.create_index('ix_voucher_entry_claim', ['claim_pk'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('voucher_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_voucher_entry_claim')
        batch_op.drop_index('ix_voucher_entry_account')

    op.drop_table('voucher_entry')
    with op.batch_alter_table('voucher_reward', schema=None) as batch_op:
        batch_op.drop_index('ix_voucher_reward_usable')

    op.drop_table('voucher_reward')
    with op.batch_alter_table('voucher_claim', schema=None) as batch_op:
        batch_op.drop_index('ix_voucher_claim_institution_created')
        batch_op.drop_index('ix_voucher_claim_account_service')

    op.drop_table('voucher_claim')
    with op.batch_alter_table('voucher_account_patient', schema=None) as batch_op:
        batch_op.drop_index('ix_voucher_account_patient_account')

    op.drop_table('voucher_account_patient')
    op.drop_table('voucher_account')
