"""a daily rollup beside the hourly one, folded by the same commit-time trigger

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

The overview's 7- and 30-day views summed every hourly rollup row of the period (~4,700 for a
busy merchant's 30 days); payment_daily_totals holds the same figures per UTC day, so those
views read ~30 rows per currency and status. It is filled from payment_hourly_totals here, and
from then on by the fold at commit, which now writes the transaction's deltas to both tables
(payportal/portal/models.py).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Every transaction with unfolded deltas holds ROW EXCLUSIVE on payment_total_deltas until it
# ends. SHARE waits for those to commit (their folds, by the old function, are then in the hourly
# totals the backfill reads) and holds back new payment writes until this migration commits
# (their folds, at their own commits, then run the new function): no commit is missed by the
# daily table or counted in it twice. Payment writes therefore wait while the migration runs:
# ~3 s for the 500,000 hourly rows of the bench's 1,000,000 payments.
LOCK_DELTAS = "LOCK TABLE payment_total_deltas IN SHARE MODE"

# date_trunc on a timestamptz truncates in the session's TimeZone; on the UTC wall-clock time
# (a timestamp without time zone) it gives UTC midnights whatever the session's TimeZone is.
# In key order into the new primary key; the foreign key is added after, checked in one pass
# instead of row by row.
BACKFILL = """
INSERT INTO payment_daily_totals (merchant_id, day, currency, status, payments, amount)
SELECT merchant_id, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       currency, status, sum(payments), sum(amount)
FROM payment_hourly_totals
GROUP BY 1, 2, 3, 4
HAVING sum(payments) <> 0 OR sum(amount) <> 0
ORDER BY 1, 2, 3, 4
"""

# The fold function of 0001 is its guard and its hourly statement; this revision puts a daily
# statement between them. The daily statement only reads the transaction's deltas; the hourly
# one (as before) moves them out. Both lock rollup rows in key order, daily before hourly in
# every transaction, so concurrent commits still take their row locks in one global order and
# cannot deadlock.
_GUARD = """
CREATE OR REPLACE FUNCTION payment_totals_flush() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- one event per delta fires at commit; the first folds them all, the rest find theirs gone
    IF NOT EXISTS (SELECT 1 FROM payment_total_deltas WHERE id = NEW.id) THEN
        RETURN NULL;
    END IF;
"""
_DAILY = """\
    INSERT INTO payment_daily_totals AS t (merchant_id, day, currency, status, payments, amount)
    SELECT merchant_id, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day,
           currency, status, sum(payments), sum(amount)
    FROM payment_total_deltas
    WHERE txid = txid_current()
    GROUP BY merchant_id, day, currency, status
    HAVING sum(payments) <> 0 OR sum(amount) <> 0
    ORDER BY merchant_id, day, currency, status
    ON CONFLICT (merchant_id, day, currency, status) DO UPDATE
        SET payments = t.payments + EXCLUDED.payments, amount = t.amount + EXCLUDED.amount;
"""
_HOURLY = """\
    WITH moved AS (
        DELETE FROM payment_total_deltas WHERE txid = txid_current()
        RETURNING merchant_id, hour, currency, status, payments, amount
    )
    INSERT INTO payment_hourly_totals AS t (merchant_id, hour, currency, status, payments, amount)
    SELECT merchant_id, hour, currency, status, sum(payments), sum(amount)
    FROM moved
    GROUP BY merchant_id, hour, currency, status
    HAVING sum(payments) <> 0 OR sum(amount) <> 0
    ORDER BY merchant_id, hour, currency, status
    ON CONFLICT (merchant_id, hour, currency, status) DO UPDATE
        SET payments = t.payments + EXCLUDED.payments, amount = t.amount + EXCLUDED.amount;
    RETURN NULL;
END
$$
"""
FOLD_BOTH = _GUARD + _DAILY + _HOURLY
# 0001's function, word for word
FOLD_HOURLY = _GUARD + _HOURLY


def upgrade() -> None:
    op.execute(LOCK_DELTAS)
    op.create_table(
        "payment_daily_totals",
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.DateTime(timezone=True), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM(name="payment_status", create_type=False),  # 0001 made it
            nullable=False,
        ),
        sa.Column("payments", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "merchant_id", "day", "currency", "status", name=op.f("pk_payment_daily_totals")
        ),
    )
    op.execute(BACKFILL)
    op.create_foreign_key(
        op.f("fk_payment_daily_totals_merchant_id_merchants"),
        "payment_daily_totals",
        "merchants",
        ["merchant_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.execute(FOLD_BOTH)


def downgrade() -> None:
    op.execute(LOCK_DELTAS)
    op.execute(FOLD_HOURLY)
    op.drop_table("payment_daily_totals")
