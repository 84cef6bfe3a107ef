"""Races over real HTTP: threads on separate connections, released together by a barrier."""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa
from sqlalchemy.orm import Session

from payportal.events.models import OutboxEvent
from payportal.payments.models import Payment, PaymentTransition, Refund
from tests.concurrency import race
from tests.factories import access_token, bearer, create_merchant, create_payment

API = "/api/v1/payments"


def committed_payment(engine, settings, status="completed", **fields):
    with Session(engine, expire_on_commit=False) as session, session.begin():
        merchant = create_merchant(session, settings)
        payment = create_payment(session, settings, merchant, status=status, **fields)
    return merchant, payment, bearer(access_token(settings, merchant))


def test_twenty_concurrent_refunds_of_sixty_percent_one_succeeds(wsgi_app, committed_db, settings):
    _m, payment, headers = committed_payment(committed_db, settings, amount=10_000)

    def refund(app):
        return app.post_json(
            f"{API}/{payment.reference}/refunds", {"amount": 6_000}, headers=headers, status="*"
        )

    responses = race(wsgi_app, [refund] * 20)
    assert Counter(r.status_int for r in responses) == {201: 1, 422: 19}
    with Session(committed_db) as session:
        row = session.get(Payment, payment.id)
        assert (row.status, row.amount_refunded) == ("partially_refunded", 6_000)
        assert row.amount_refunded <= row.amount
        refunds = session.scalar(sa.select(sa.func.count()).where(Refund.payment_id == row.id))
        assert refunds == 1
        events = session.scalar(
            sa.select(sa.func.count()).where(
                OutboxEvent.payment_id == row.id, OutboxEvent.type == "payment.partially_refunded"
            )
        )
        assert events == 1


def test_fifty_conflicting_status_changes_make_one_transition(wsgi_app, committed_db, settings):
    _m, payment, headers = committed_payment(committed_db, settings, status="pending")
    targets = ["completed", "failed", "cancelled"] * 17
    targets = targets[:50]

    def change(target):
        def call(app):
            return app.put_json(
                f"{API}/{payment.reference}/status", {"status": target}, headers=headers, status="*"
            )

        return call

    responses = race(wsgi_app, [change(t) for t in targets])
    statuses = Counter(r.status_int for r in responses)
    assert statuses == {200: 1, 409: 49}
    winner = next(r for r in responses if r.status_int == 200).json["payment"]["status"]
    assert all(
        r.json["error"]["code"] == "invalid_transition" for r in responses if r.status_int == 409
    )
    with Session(committed_db) as session:
        row = session.get(Payment, payment.id)
        transitions = (
            session.execute(
                sa.select(PaymentTransition.to_status).where(PaymentTransition.payment_id == row.id)
            )
            .scalars()
            .all()
        )
        assert sorted(transitions) == sorted(["pending", winner])
        assert row.status == winner
        assert row.version == len(transitions) == 2
        events = session.scalar(
            sa.select(sa.func.count()).where(
                OutboxEvent.payment_id == row.id, OutboxEvent.type != "payment.initiated"
            )
        )
        assert events == 1
