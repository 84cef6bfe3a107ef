"""Races with figures: concurrent refunds over many trials, a hundred conflicting status changes,
and a hundred replays of one idempotent request (threads on separate connections, real commits)."""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa
from sqlalchemy.orm import Session

from payportal.events.models import OutboxEvent
from payportal.payments.models import Payment, PaymentTransition, Refund
from payportal.payments.state import TERMINAL
from tests.concurrency import race
from tests.factories import create_payment
from tests.reliability.conftest import sized

API = "/api/v1/payments"


def committed_payment(engine, settings, merchant, **fields):
    with Session(engine, expire_on_commit=False) as session, session.begin():
        return create_payment(session, settings, merchant, **fields)


def test_twenty_concurrent_refunds_of_sixty_percent_one_succeeds_in_every_trial(
    wsgi_app, committed_db, settings, committed_merchant, stress
):
    """Scenario 3: 20 refunds of 60 % at once, N trials -> exactly one 201 in each, and the
    refunded amount never exceeds the payment's."""
    trials = sized(stress, ci=20, full=200)
    headers = committed_merchant.headers
    one_winner = within_amount = 0
    for _trial in range(trials):
        payment = committed_payment(
            committed_db, settings, committed_merchant.merchant, status="completed", amount=10_000
        )

        def refund(app, reference=payment.reference):
            return app.post_json(
                f"{API}/{reference}/refunds", {"amount": 6_000}, headers=headers, status="*"
            )

        statuses = Counter(r.status_int for r in race(wsgi_app, [refund] * 20))
        one_winner += statuses == {201: 1, 422: 19}
        with Session(committed_db) as session:
            row = session.get(Payment, payment.id)
            refunded = session.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(Refund.amount), 0)).where(
                    Refund.payment_id == payment.id
                )
            )
            within_amount += row.amount_refunded == refunded == 6_000 <= row.amount
    assert (one_winner, within_amount) == (trials, trials)


def test_a_hundred_conflicting_transitions_make_exactly_one_terminal_move(
    wsgi_app, committed_db, settings, committed_merchant
):
    """Scenario 5: 100 threads completing, failing and cancelling one pending payment."""
    payment = committed_payment(committed_db, settings, committed_merchant.merchant)
    targets = (["completed", "failed", "cancelled"] * 34)[:100]

    def change(target):
        def call(app):
            return app.put_json(
                f"{API}/{payment.reference}/status",
                {"status": target},
                headers=committed_merchant.headers,
                status="*",
            )

        return call

    responses = race(wsgi_app, [change(t) for t in targets])
    statuses = Counter(r.status_int for r in responses)
    assert statuses == {200: 1, 409: 99}, statuses
    with Session(committed_db) as session:
        row = session.get(Payment, payment.id)
        moves = session.scalars(
            sa.select(PaymentTransition.to_status).where(PaymentTransition.payment_id == row.id)
        ).all()
        events = session.scalars(
            sa.select(OutboxEvent.type).where(OutboxEvent.payment_id == row.id)
        ).all()
    # the one move out of pending; completed is final for a status change (only refunds and
    # disputes leave it), failed and cancelled are terminal
    assert row.status in {"completed", *TERMINAL} and sorted(moves) == sorted(
        ["pending", row.status]
    )
    assert row.version == len(moves) == 2
    assert sorted(events) == sorted(["payment.initiated", f"payment.{row.status}"])


def test_a_hundred_sequential_replays_return_the_first_response(
    live_testapp, committed_db, committed_merchant
):
    """Scenario 4: the same Idempotency-Key and body 100 times -> one payment, one event,
    100 identical bodies."""
    headers = {**committed_merchant.headers, "Idempotency-Key": "order-2024-0001"}
    body = {"amount": 4_200, "currency": "GBP", "description": "Order 2024-0001"}
    bodies = {
        live_testapp.post_json(f"{API}/initialize", body, headers=headers, status=201).body
        for _ in range(100)
    }
    assert len(bodies) == 1
    merchant_id = committed_merchant.merchant.id
    with Session(committed_db) as session:
        payments = session.scalar(
            sa.select(sa.func.count()).where(Payment.merchant_id == merchant_id)
        )
        events = session.scalar(
            sa.select(sa.func.count()).where(OutboxEvent.merchant_id == merchant_id)
        )
    assert (payments, events) == (1, 1)
