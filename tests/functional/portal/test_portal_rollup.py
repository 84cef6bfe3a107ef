"""The overview's rollup stays exactly equal to the payments it summarises: inside a transaction
(its own deltas), after real commits (folded, no deltas left), and under concurrent writers."""

from __future__ import annotations

import datetime as dt
import threading

import sqlalchemy as sa
from sqlalchemy.orm import Session

from payportal.payments.models import Payment
from payportal.payments.state import apply_transition, lock_payment
from payportal.portal.models import PaymentHourlyTotal, PaymentTotalDelta
from payportal.portal.rollup import period_totals
from tests.factories import create_merchant, create_payment

LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def live_counts(session, merchant_id) -> dict:
    """What the rollup must say, straight from the payments table."""
    hour = sa.func.date_trunc("hour", sa.func.timezone("UTC", Payment.created_at))
    rows = session.execute(
        sa.select(
            hour, Payment.currency, Payment.status, sa.func.count(), sa.func.sum(Payment.amount)
        )
        .where(Payment.merchant_id == merchant_id)
        .group_by(hour, Payment.currency, Payment.status)
    )
    return {(h.replace(tzinfo=dt.UTC), c, str(s)): (n, int(a)) for h, c, s, n, a in rows}


def rollup_counts(session, merchant_id) -> dict:
    totals = period_totals(session, merchant_id, LONG_AGO, "hour")
    found: dict = {}
    for status, count in totals.by_status.items():
        found[status] = count
    return found


def by_status(live: dict) -> dict:
    found: dict = {}
    for (_hour, _currency, status), (count, _amount) in live.items():
        found[status] = found.get(status, 0) + count
    return found


def folded_rows(session, merchant_id) -> dict:
    rows = session.execute(
        sa.select(PaymentHourlyTotal).where(
            PaymentHourlyTotal.merchant_id == merchant_id, PaymentHourlyTotal.payments != 0
        )
    ).scalars()
    return {(r.hour, r.currency, str(r.status)): (r.payments, r.amount) for r in rows}


def test_inside_a_transaction_the_rollup_counts_its_own_changes(dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    for status in ("pending", "completed", "failed", "partially_refunded", "refunded", "disputed"):
        create_payment(dbsession, settings, merchant, status=status, currency="EUR")
    create_payment(dbsession, settings, merchant, status="completed", amount=777, currency="JPY")
    expected = by_status(live_counts(dbsession, merchant.id))
    assert rollup_counts(dbsession, merchant.id) == expected
    totals = period_totals(dbsession, merchant.id, LONG_AGO, "day")
    eur = next(c for c in totals.currencies() if c.currency == "EUR")
    # completed, partially refunded, refunded and disputed are settled: 4 x 100.00
    assert (eur.settled_count, eur.settled_amount) == (4, 40_000)


def test_a_payment_moved_to_another_day_moves_in_the_rollup(dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    payment = create_payment(dbsession, settings, merchant, status="completed")
    dbsession.execute(
        sa.update(Payment)
        .where(Payment.id == payment.id)
        .values(created_at=dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC))
    )
    totals = period_totals(dbsession, merchant.id, LONG_AGO, "day")
    assert list(totals.settled_by_bucket) == [(dt.datetime(2024, 5, 1, tzinfo=dt.UTC), "USD")]


def test_after_commit_the_deltas_are_folded_into_the_totals(committed_db, settings):
    with Session(committed_db, expire_on_commit=False) as session:
        merchant = create_merchant(session, settings)
        payments = [create_payment(session, settings, merchant) for _ in range(5)]
        session.commit()
        targets = ("completed", "failed", "cancelled", "completed")
        for payment, target in zip(payments[:4], targets, strict=True):
            locked = lock_payment(session, payment_id=payment.id)
            apply_transition(session, locked, target, source="api", settings=settings)
            session.commit()
        leftover = session.execute(sa.select(sa.func.count()).select_from(PaymentTotalDelta))
        assert leftover.scalar() == 0
        assert folded_rows(session, merchant.id) == live_counts(session, merchant.id)
        assert rollup_counts(session, merchant.id) == {
            "pending": 1,
            "completed": 2,
            "failed": 1,
            "cancelled": 1,
        }


def test_a_rolled_back_change_leaves_the_totals_alone(committed_db, settings):
    with Session(committed_db, expire_on_commit=False) as session:
        merchant = create_merchant(session, settings)
        payment = create_payment(session, settings, merchant)
        session.commit()
        before = folded_rows(session, merchant.id)
        locked = lock_payment(session, payment_id=payment.id)
        apply_transition(session, locked, "completed", source="api", settings=settings)
        session.rollback()
        assert folded_rows(session, merchant.id) == before
        assert (
            session.execute(sa.select(sa.func.count()).select_from(PaymentTotalDelta)).scalar() == 0
        )


def test_concurrent_writers_for_one_merchant_stay_exact(committed_db, settings):
    """Threads on separate connections create and settle payments of the same merchant at
    once, in the same hour and currency: every commit folds into the same rollup rows."""
    with Session(committed_db, expire_on_commit=False) as session:
        merchant = create_merchant(session, settings)
        session.commit()
    workers, each = 8, 6
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work(n: int):
        try:
            with Session(committed_db, expire_on_commit=False) as session:
                barrier.wait()
                for i in range(each):
                    payment = create_payment(session, settings, merchant)
                    session.commit()
                    locked = lock_payment(session, payment_id=payment.id)
                    target = ("completed", "failed", "expired")[(n + i) % 3]
                    apply_transition(session, locked, target, source="api", settings=settings)
                    session.commit()
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with Session(committed_db) as session:
        live = live_counts(session, merchant.id)
        assert folded_rows(session, merchant.id) == live
        assert sum(count for count, _amount in live.values()) == workers * each
        assert (
            session.execute(sa.select(sa.func.count()).select_from(PaymentTotalDelta)).scalar() == 0
        )
