"""Deliveries at the same moment (real threads, separate connections, real commits): the same
one 50 times applies once, for every gateway; different ones still end in the same state."""

from __future__ import annotations

import threading

import sqlalchemy as sa
import webtest
from sqlalchemy.orm import Session

from payportal.events.models import OutboxEvent
from payportal.gateways.models import GatewayWebhook
from payportal.payments.models import Payment, PaymentTransition
from tests.factories import create_merchant, create_payment_row
from tests.functional.gateways.conftest import GATEWAYS, encode, sign_stripe, stripe_event

DELIVERIES = 50


def test_fifty_identical_deliveries_at_once_apply_once(wsgi_app, committed_db, settings, gateway):
    with Session(committed_db, expire_on_commit=False) as session:
        merchant = create_merchant(session, settings)
        payment = create_payment_row(session, settings, merchant, currency=gateway.currency)
        session.commit()
    raw = encode(gateway.completed(payment))
    headers = gateway.sign(raw)
    barrier = threading.Barrier(DELIVERIES)
    answers: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def deliver():
        app = webtest.TestApp(wsgi_app, extra_environ={"HTTP_HOST": "localhost"})
        barrier.wait()
        response = app.post(
            gateway.url, raw, headers=headers, content_type="application/json", status="*"
        )
        outcome = response.json.get("outcome") if response.status_int == 200 else None
        with lock:
            answers.append((response.status_int, outcome))

    threads = [threading.Thread(target=deliver) for _ in range(DELIVERIES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(answers) == sorted([(200, "processed")] + [(200, "duplicate")] * 49)
    with committed_db.connect() as conn:
        stored = conn.execute(
            sa.select(GatewayWebhook.outcome).where(GatewayWebhook.gateway == gateway.name)
        ).all()
        moves = conn.execute(
            sa.select(PaymentTransition.to_status).where(PaymentTransition.payment_id == payment.id)
        ).scalars()
        events = conn.execute(
            sa.select(OutboxEvent.type).where(OutboxEvent.payment_id == payment.id)
        ).scalars()
        status, version = conn.execute(
            sa.select(Payment.status, Payment.version).where(Payment.id == payment.id)
        ).one()
    assert [row.outcome for row in stored] == ["processed"]
    assert sorted(moves) == ["completed", "pending"]
    assert list(events) == ["payment.completed"]
    assert (status, version) == ("completed", 2)


def test_processing_completed_and_refunded_at_once_still_end_refunded(
    wsgi_app, committed_db, settings
):
    gateway = GATEWAYS["stripe"]
    with Session(committed_db, expire_on_commit=False) as session:
        merchant = create_merchant(session, settings)
        payments = [create_payment_row(session, settings, merchant) for _ in range(5)]
        session.commit()
    bodies = [
        encode(stripe_event(payment.reference, status))
        for payment in payments
        for status in ("processing", "completed", "refunded")
    ]
    barrier = threading.Barrier(len(bodies))
    statuses: list[int] = []

    def deliver(raw: bytes):
        app = webtest.TestApp(wsgi_app, extra_environ={"HTTP_HOST": "localhost"})
        barrier.wait()
        response = app.post(
            gateway.url, raw, headers=sign_stripe(raw), content_type="application/json"
        )
        statuses.append(response.status_int)

    threads = [threading.Thread(target=deliver, args=(raw,)) for raw in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [200] * len(bodies)
    with committed_db.connect() as conn:
        final = conn.execute(
            sa.select(Payment.status, Payment.amount_refunded).where(
                Payment.id.in_([p.id for p in payments])
            )
        ).all()
        parked = conn.execute(
            sa.select(sa.func.count()).where(GatewayWebhook.outcome == "parked")
        ).scalar_one()
        refunded_events = conn.execute(
            sa.select(sa.func.count()).where(OutboxEvent.type == "payment.refunded")
        ).scalar_one()
    assert final == [("refunded", 10_000)] * len(payments)
    assert (parked, refunded_events) == (0, len(payments))
