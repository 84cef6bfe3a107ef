"""The same delivery 50 times at once (real threads, separate connections, real commits):
one stored delivery, one transition, one event, and 49 duplicates — for every gateway."""

from __future__ import annotations

import threading

import sqlalchemy as sa
import webtest
from sqlalchemy.orm import Session

from payportal.events.models import OutboxEvent
from payportal.gateways.models import GatewayWebhook
from payportal.payments.models import Payment, PaymentTransition
from tests.factories import create_merchant, create_payment_row
from tests.functional.gateways.conftest import encode

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
