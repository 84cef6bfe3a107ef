"""period_totals (the overview's and the console's figures) equals what the payments table says,
by day and by hour, from folded totals and a transaction's own deltas alike: PostgreSQL groups
them (GROUPING SETS), so these tests hold its three views to the payments themselves."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from payportal.db import utcnow
from payportal.payments.models import Payment
from payportal.payments.state import SETTLED, apply_transition, lock_payment
from payportal.portal.rollup import CurrencyVolume, PeriodTotals, period_totals
from tests.factories import create_merchant, create_payment

SETTLED_VALUES = {s.value for s in SETTLED}


def expected_totals(session, merchant_id, start: dt.datetime, unit: str) -> PeriodTotals:
    """The same figures folded in Python from the merchant's payments, one by one."""
    rows = session.execute(
        sa.select(Payment.created_at, Payment.currency, Payment.status, Payment.amount).where(
            Payment.merchant_id == merchant_id, Payment.created_at >= start
        )
    )
    totals = PeriodTotals()
    for created_at, currency, status, amount in rows:
        status = str(status)
        totals.count += 1
        totals.by_status[status] = totals.by_status.get(status, 0) + 1
        volume = totals.by_currency.setdefault(currency, CurrencyVolume(currency))
        if status in SETTLED_VALUES:
            volume.settled_amount += amount
            volume.settled_count += 1
            at = created_at.astimezone(dt.UTC)
            bucket = at.replace(minute=0, second=0, microsecond=0)
            if unit == "day":
                bucket = bucket.replace(hour=0)
            key = (bucket, currency)
            totals.settled_by_bucket[key] = totals.settled_by_bucket.get(key, 0) + amount
    return totals


def assert_same(found: PeriodTotals, expected: PeriodTotals) -> None:
    assert found.count == expected.count
    assert found.by_status == expected.by_status
    assert found.by_currency == expected.by_currency
    assert found.settled_by_bucket == expected.settled_by_bucket
    assert found.settled == expected.settled
    assert found.success_rate == expected.success_rate
    assert found.currencies() == expected.currencies()


def move(session, payment, created_at: dt.datetime) -> None:
    session.execute(
        sa.update(Payment).where(Payment.id == payment.id).values(created_at=created_at)
    )


MIX = [
    ("USD", "completed", 10_050),
    ("USD", "completed", 99),
    ("USD", "failed", 5_000),
    ("USD", "pending", 7_000),
    ("EUR", "partially_refunded", 12_345),
    ("EUR", "refunded", 2_000),
    ("EUR", "cancelled", 300),
    ("JPY", "completed", 777),
    ("JPY", "disputed", 1_500),
    ("KWD", "pending", 1_234),  # a currency with nothing settled still shows
    ("GBP", "expired", 4_200),
]


def seed(session, settings, merchant, today: dt.datetime) -> list:
    """The mix spread over hours of today and over earlier days, some before any period."""
    payments = []
    for n, (currency, status, amount) in enumerate(MIX * 3):
        payment = create_payment(
            session, settings, merchant, status=status, currency=currency, amount=amount
        )
        if n % 3 == 1:
            move(session, payment, today - dt.timedelta(days=n % 9, hours=n % 5, minutes=7))
        elif n % 3 == 2:
            move(session, payment, today + dt.timedelta(hours=n % 11, minutes=n))
        payments.append(payment)
    move(session, payments[0], today - dt.timedelta(days=60))  # before every period
    return payments


def periods(today: dt.datetime):
    return [
        (today, "hour"),
        (today - dt.timedelta(days=6), "day"),
        (today - dt.timedelta(days=29), "day"),
        (dt.datetime(2000, 1, 1, tzinfo=dt.UTC), "day"),
    ]


def test_a_transactions_own_deltas_give_the_payments_figures(dbsession, settings):
    today = dt.datetime.combine(utcnow().date(), dt.time(), dt.UTC)
    merchant = create_merchant(dbsession, settings)
    other = create_merchant(dbsession, settings, email="other@example.com")
    seed(dbsession, settings, merchant, today)
    create_payment(dbsession, settings, other, status="completed", currency="USD")
    for start, unit in periods(today):
        assert_same(
            period_totals(dbsession, merchant.id, start, unit),
            expected_totals(dbsession, merchant.id, start, unit),
        )


def test_folded_totals_plus_open_changes_give_the_payments_figures(committed_db, settings):
    today = dt.datetime.combine(utcnow().date(), dt.time(), dt.UTC)
    with Session(committed_db, expire_on_commit=False) as session:
        merchant = create_merchant(session, settings)
        payments = seed(session, settings, merchant, today)
        session.commit()
        # uncommitted: payments settle, fail and move day, and new ones arrive; some groups
        # net to zero (all their payments moved on) and must not show at all
        pending = [p for p in payments if str(p.status) == "pending"]
        for n, payment in enumerate(pending):
            locked = lock_payment(session, payment_id=payment.id)
            target = ("completed", "failed")[n % 2]
            apply_transition(session, locked, target, source="api", settings=settings)
        move(session, payments[4], today - dt.timedelta(days=3, hours=2))
        create_payment(session, settings, merchant, status="completed", currency="KWD")
        for start, unit in periods(today):
            assert_same(
                period_totals(session, merchant.id, start, unit),
                expected_totals(session, merchant.id, start, unit),
            )
        totals = period_totals(session, merchant.id, today - dt.timedelta(days=29), "day")
        assert "pending" not in totals.by_status  # every pending payment moved on
        session.commit()
        for start, unit in periods(today):
            assert_same(
                period_totals(session, merchant.id, start, unit),
                expected_totals(session, merchant.id, start, unit),
            )


def test_a_merchant_without_payments_has_empty_totals(dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    totals = period_totals(dbsession, merchant.id, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), "day")
    assert totals == PeriodTotals()
    assert totals.success_rate is None
