"""The overview's rollup stays exactly equal to the payments it summarises: inside a transaction
(its own deltas), after real commits before and after the folder moves their deltas into the
totals, under concurrent writers and folders; and a payment write never waits on a rollup row."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from payportal.merchants.models import Merchant
from payportal.payments.models import Payment
from payportal.payments.state import apply_transition, lock_payment
from payportal.portal.models import PaymentDailyTotal, PaymentHourlyTotal, PaymentTotalDelta
from payportal.portal.rollup import fold_deltas, period_totals
from tests.factories import create_merchant, create_payment
from tests.functional.portal.conftest import folders_at_work

LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
FOLD_LOCK = sa.text(
    "SELECT pg_advisory_xact_lock(hashtextextended('payportal.payment_totals_fold', 0))"
)


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


def waiting_deltas(session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(PaymentTotalDelta))


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


def test_committed_changes_count_at_once_and_the_fold_moves_them_into_the_totals(
    committed_db, settings
):
    factory = sessionmaker(bind=committed_db, expire_on_commit=False)
    with factory() as session:
        merchant = create_merchant(session, settings)
        payments = [create_payment(session, settings, merchant) for _ in range(5)]
        session.commit()
        targets = ("completed", "failed", "cancelled", "completed")
        for payment, target in zip(payments[:4], targets, strict=True):
            locked = lock_payment(session, payment_id=payment.id)
            apply_transition(session, locked, target, source="api", settings=settings)
            session.commit()
        expected = {"pending": 1, "completed": 2, "failed": 1, "cancelled": 1}
        # committed, not folded yet: nothing in the totals, every change in what readers see
        assert folded_rows(session, merchant.id) == {}
        assert rollup_counts(session, merchant.id) == expected
        session.commit()

    # five payments (+1 each), four moves (-1 and +1 each)
    assert fold_deltas(factory) == 5 + 4 * 2
    with factory() as session:
        assert waiting_deltas(session) == 0
        assert folded_rows(session, merchant.id) == live_counts(session, merchant.id)
        assert rollup_counts(session, merchant.id) == expected
    assert fold_deltas(factory) == 0


def test_the_fold_moves_a_batch_per_transaction(committed_db, settings):
    factory = sessionmaker(bind=committed_db, expire_on_commit=False)
    with factory() as session:
        merchant = create_merchant(session, settings)
        for _ in range(7):
            create_payment(session, settings, merchant)
        session.commit()
    assert fold_deltas(factory, batch=3) == 7
    with factory() as session:
        assert waiting_deltas(session) == 0
        assert folded_rows(session, merchant.id) == live_counts(session, merchant.id)


def test_one_folder_at_a_time(committed_db, settings):
    """While another process folds (holds the fold's lock), a folder returns at once and leaves
    the deltas to it; readers count them all the same."""
    factory = sessionmaker(bind=committed_db, expire_on_commit=False)
    with factory() as session:
        merchant = create_merchant(session, settings)
        create_payment(session, settings, merchant)
        session.commit()
    with factory() as other_folder, other_folder.begin():
        other_folder.execute(FOLD_LOCK)
        assert fold_deltas(factory) == 0
        with factory() as session:
            assert waiting_deltas(session) == 1
            assert rollup_counts(session, merchant.id) == {"pending": 1}
    assert fold_deltas(factory) == 1


def folded_payment(factory, settings):
    """A merchant and its pending payment, committed and folded into the totals."""
    with factory() as session:
        merchant = create_merchant(session, settings)
        payment = create_payment(session, settings, merchant)
        session.commit()
    fold_deltas(factory)
    return merchant, payment


def test_a_payment_commits_while_its_rollup_rows_are_locked(committed_db, settings):
    """A payment write appends deltas and touches no rollup row: a busy merchant's payments do
    not queue behind each other on its totals (each commit used to update them)."""
    factory = sessionmaker(bind=committed_db, expire_on_commit=False)
    merchant, payment = folded_payment(factory, settings)
    with factory() as holder, holder.begin():
        for table in (PaymentHourlyTotal, PaymentDailyTotal):
            locked = holder.scalars(
                sa.select(table).where(table.merchant_id == merchant.id).with_for_update()
            ).all()
            assert locked
        with factory() as session:
            session.execute(sa.text("SET lock_timeout = '2s'"))
            create_payment(session, settings, merchant)
            moved = lock_payment(session, payment_id=payment.id)
            apply_transition(session, moved, "completed", source="api", settings=settings)
            session.commit()
            assert rollup_counts(session, merchant.id) == {"pending": 1, "completed": 1}


def test_a_deleted_merchants_deltas_are_dropped_by_the_fold(committed_db, settings):
    factory = sessionmaker(bind=committed_db, expire_on_commit=False)
    with factory() as session:
        gone, kept = create_merchant(session, settings), create_merchant(session, settings)
        create_payment(session, settings, gone, status="completed")
        create_payment(session, settings, kept, status="failed")
        session.commit()
        session.execute(sa.delete(Payment).where(Payment.merchant_id == gone.id))
        session.execute(sa.delete(Merchant).where(Merchant.id == gone.id))
        session.commit()
    assert fold_deltas(factory) > 0
    with factory() as session:
        assert waiting_deltas(session) == 0
        assert folded_rows(session, kept.id) == live_counts(session, kept.id)
        assert folded_rows(session, gone.id) == {}


def test_a_rolled_back_change_leaves_the_totals_alone(committed_db, settings):
    factory = sessionmaker(bind=committed_db, expire_on_commit=False)
    merchant, payment = folded_payment(factory, settings)
    with factory() as session:
        before = folded_rows(session, merchant.id)
        locked = lock_payment(session, payment_id=payment.id)
        apply_transition(session, locked, "completed", source="api", settings=settings)
        session.rollback()
        assert fold_deltas(factory) == 0
        assert folded_rows(session, merchant.id) == before
        assert waiting_deltas(session) == 0
        assert rollup_counts(session, merchant.id) == {"pending": 1}


@pytest.mark.parametrize("folders", [0, 2])
def test_concurrent_writers_for_one_merchant_stay_exact(committed_db, settings, folders):
    """Threads on separate connections create and settle payments of the same merchant at
    once, in the same hour and currency, while folders (or none) keep moving their deltas into
    the same rollup rows: readers and, once all is folded, the totals match the payments."""
    factory = sessionmaker(bind=committed_db, expire_on_commit=False)
    with factory() as session:
        merchant = create_merchant(session, settings)
        session.commit()
    workers, each = 8, 6
    barrier = threading.Barrier(workers + folders)
    errors: list[BaseException] = []

    def work(n: int):
        try:
            with factory() as session:
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

    writers = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    with folders_at_work(factory, folders, batch=5, barrier=barrier, errors=errors):
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join(60)
    assert errors == []
    with Session(committed_db) as session:
        live = live_counts(session, merchant.id)
        assert sum(count for count, _amount in live.values()) == workers * each
        assert rollup_counts(session, merchant.id) == by_status(live)
    fold_deltas(factory)
    with Session(committed_db) as session:
        assert folded_rows(session, merchant.id) == live
        assert waiting_deltas(session) == 0
