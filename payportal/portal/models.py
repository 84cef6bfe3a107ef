"""The dashboard's rollup of payments per merchant, currency and status, by UTC hour and by UTC
day, so the overview reads a few dozen rows instead of every payment of a busy merchant.

A row trigger on payments appends signed deltas (+1 and the amount for a new state, -1 for the
state left) to payment_total_deltas, in the same transaction as the change. A folder
(payment_totals_fold(batch), run by payportal-relay every rollup_fold_interval seconds and by
payportal-sweep) moves committed deltas into payment_daily_totals and payment_hourly_totals in
one statement, one folder at a time. A payment write therefore never touches a rollup row: a
busy merchant's writes do not queue behind each other's commits on the same totals, as they did
when each commit folded its own deltas (migration 0005). Readers add the deltas still waiting
(committed ones, and their own transaction's) to the totals in one snapshot, so every read is
exact whether or not the folder has run. Day views read the daily table (a 30-day view: ~30
rows per currency and status, not ~720); hour views and periods that do not start at a UTC
midnight read the hourly one. The functions and triggers are created by the migrations.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from payportal.db import Base, pg_enum
from payportal.payments.models import PaymentStatus


class PaymentHourlyTotal(Base):
    """Payments created in one UTC hour, by currency and current status."""

    __tablename__ = "payment_hourly_totals"

    merchant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("merchants.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[dt.datetime] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(sa.String(3), primary_key=True)
    status: Mapped[PaymentStatus] = mapped_column(
        pg_enum(PaymentStatus, "payment_status"), primary_key=True
    )
    payments: Mapped[int] = mapped_column(sa.BigInteger)
    amount: Mapped[int] = mapped_column(sa.BigInteger)


class PaymentDailyTotal(Base):
    """Payments created in one UTC day (`day` is its midnight), by currency and current status."""

    __tablename__ = "payment_daily_totals"

    merchant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("merchants.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[dt.datetime] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(sa.String(3), primary_key=True)
    status: Mapped[PaymentStatus] = mapped_column(
        pg_enum(PaymentStatus, "payment_status"), primary_key=True
    )
    payments: Mapped[int] = mapped_column(sa.BigInteger)
    amount: Mapped[int] = mapped_column(sa.BigInteger)


class PaymentTotalDelta(Base):
    """One signed change of a payment's place in the rollup, until the folder moves it in."""

    __tablename__ = "payment_total_deltas"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    merchant_id: Mapped[uuid.UUID] = mapped_column()
    hour: Mapped[dt.datetime] = mapped_column()
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[PaymentStatus] = mapped_column(pg_enum(PaymentStatus, "payment_status"))
    payments: Mapped[int] = mapped_column(sa.BigInteger)
    amount: Mapped[int] = mapped_column(sa.BigInteger)

    __table_args__ = (sa.Index("ix_payment_total_deltas_merchant_id_hour", "merchant_id", "hour"),)
