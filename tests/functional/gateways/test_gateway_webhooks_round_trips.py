"""The webhook path in few statements: claim and lock in one, the move and the outcome in
another, a repeat in one and without a lock; parked deliveries found by the transition's own
statement, even one parked while the transition waited for the payment's lock; the state
machine keeping ORM payments and LockedPayments current without writing them twice."""

from __future__ import annotations

import json
import threading
import time
import uuid

import psycopg
import pytest
import sqlalchemy as sa
import webtest
from sqlalchemy.orm import Session

from payportal.db import run_statement
from payportal.events.models import OutboxEvent
from payportal.gateways.models import GatewayWebhook
from payportal.payments.models import Payment, PaymentTransition
from payportal.payments.schemas import payment_event_data
from payportal.payments.state import (
    PARKED_WEBHOOKS,
    LockedPayment,
    apply_transition,
    lock_payment,
    lock_payment_row,
)
from tests.factories import create_merchant, create_payment_row
from tests.functional.gateways.conftest import (
    GATEWAYS,
    WEBHOOKS,
    deliveries,
    encode,
    event_types,
    paystack_event,
    post_event,
    reload,
    sign_paystack,
    transitions,
)

PAYSTACK = GATEWAYS["paystack"]
AMOUNT = 500_000
# what the test connection's own transaction handling sends around each request
_HARNESS = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


class Statements:
    """The statements sent on the test's connection while recording, counted by psycopg itself
    (the webhook path runs some without SQLAlchemy's execution events)."""

    def __init__(self, connection):
        self.driver = connection.connection.driver_connection
        self.sent: list[str] = []

    def __enter__(self):
        sent = self.sent
        self.factory = factory = self.driver.cursor_factory

        class Recording(factory):
            def execute(self, query, params=None, **kwargs):
                text = " ".join(str(query).split())
                if not text.startswith(_HARNESS):
                    sent.append(text)
                return super().execute(query, params, **kwargs)

        self.driver.cursor_factory = Recording
        return self

    def __exit__(self, *exc):
        self.driver.cursor_factory = self.factory


def test_a_charge_success_completing_a_payment_is_two_statements(
    testapp, connection, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0], currency="NGN", amount=AMOUNT)

    with Statements(connection) as statements:
        answer = post_event(
            testapp, PAYSTACK, paystack_event(payment.reference, "completed", amount=AMOUNT)
        )

    assert answer.json["outcome"] == "processed"
    claim, move = statements.sent
    assert "INSERT INTO gateway_webhooks" in claim and "FOR UPDATE" in claim
    for part in ("UPDATE payments", "INSERT INTO payment_transitions", "INSERT INTO outbox_events"):
        assert part in move
    assert "UPDATE gateway_webhooks" in move
    payment = reload(dbsession, payment)
    assert (payment.status, payment.version) == ("completed", 2)
    (delivery,) = deliveries(dbsession)
    assert (delivery.outcome, delivery.payment_id, delivery.merchant_id) == (
        "processed",
        payment.id,
        payment.merchant_id,
    )
    assert delivery.target_status == "completed" and delivery.processed_at is not None
    assert event_types(dbsession, payment) == ["payment.completed"]


def test_a_repeated_delivery_is_one_statement(
    testapp, connection, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0], currency="NGN", amount=AMOUNT)
    body = paystack_event(payment.reference, "completed", amount=AMOUNT, object_id=41)
    post_event(testapp, PAYSTACK, body)

    with Statements(connection) as statements:
        answer = post_event(testapp, PAYSTACK, body)

    assert answer.json["outcome"] == "duplicate"
    assert len(statements.sent) == 1
    assert reload(dbsession, payment).version == 2


def test_an_unknown_reference_is_recorded_as_ignored(testapp, dbsession):
    answer = post_event(testapp, PAYSTACK, paystack_event("pay_nobody", "completed"))

    assert answer.json["outcome"] == "ignored"
    (delivery,) = deliveries(dbsession)
    assert (delivery.outcome, delivery.outcome_detail, delivery.payment_id) == (
        "ignored",
        "no payment has this reference",
        None,
    )
    assert delivery.reference == "pay_nobody" and delivery.processed_at is not None


def test_a_parked_delivery_is_recorded_with_its_payment_and_no_processed_at(
    testapp, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0], currency="NGN", amount=AMOUNT)
    refund = paystack_event(payment.reference, "refunded", amount=AMOUNT, object_id=9)

    assert post_event(testapp, PAYSTACK, refund).json["outcome"] == "parked"

    (delivery,) = deliveries(dbsession)
    assert (delivery.outcome, delivery.payment_id, delivery.processed_at) == (
        "parked",
        payment.id,
        None,
    )
    assert delivery.payload["data"]["transaction_reference"] == payment.reference


def test_a_paystack_refund_parked_before_the_charge_is_applied_by_it(
    testapp, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0], currency="NGN", amount=AMOUNT)
    refund = paystack_event(payment.reference, "refunded", amount=200_000, object_id=5)
    charge = paystack_event(payment.reference, "completed", amount=AMOUNT, object_id=6)

    assert post_event(testapp, PAYSTACK, refund).json["outcome"] == "parked"
    assert post_event(testapp, PAYSTACK, charge).json["outcome"] == "processed"

    payment = reload(dbsession, payment)
    assert (payment.status, payment.amount_refunded) == ("partially_refunded", 200_000)
    assert [t[1] for t in transitions(dbsession, payment)] == [
        "pending",
        "completed",
        "partially_refunded",
    ]
    assert {d.outcome for d in deliveries(dbsession)} == {"processed"}


def _wait_for_lock_waiter(engine, needle: str, timeout: float = 30) -> None:
    """Until a backend of this database waits on a lock running a statement with `needle`."""
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE :needle"
                ),
                {"needle": f"%{needle}%"},
            ).scalar_one()
            if waiting:
                return
            conn.rollback()
            time.sleep(0.02)
    raise AssertionError(f"no statement with {needle!r} ever waited for a lock")


def test_a_delivery_parked_while_the_completion_waited_for_the_lock_is_applied(
    wsgi_app, committed_db, settings
):
    """The look for parked deliveries must see one parked by the transaction the completion
    waited for: it runs after the lock is held, never in the statement that waited for it."""
    with Session(committed_db, expire_on_commit=False) as session:
        merchant = create_merchant(session, settings)
        payment = create_payment_row(session, settings, merchant, currency="NGN", amount=AMOUNT)
        session.commit()
    refund = paystack_event(payment.reference, "refunded", amount=AMOUNT, object_id=71)
    charge = encode(paystack_event(payment.reference, "completed", amount=AMOUNT, object_id=72))
    answers: list = []

    def deliver():
        app = webtest.TestApp(wsgi_app, extra_environ={"HTTP_HOST": "localhost"})
        answers.append(
            app.post(
                f"{WEBHOOKS}/paystack",
                charge,
                headers=sign_paystack(charge),
                content_type="application/json",
            ).json["outcome"]
        )

    holder = committed_db.connect()
    try:
        with holder.begin():
            # another request holds the payment, and parks a refund for it while the charge waits
            holder.execute(sa.select(Payment.id).where(Payment.id == payment.id).with_for_update())
            thread = threading.Thread(target=deliver)
            thread.start()
            _wait_for_lock_waiter(committed_db, "INSERT INTO gateway_webhooks")
            holder.execute(
                sa.insert(GatewayWebhook).values(
                    id=uuid.uuid4(),
                    gateway="paystack",
                    gateway_event_id="refund.processed:71",
                    event_type="refund.processed",
                    signature_valid=True,
                    payload=refund,
                    reference=payment.reference,
                    payment_id=payment.id,
                    merchant_id=merchant.id,
                    target_status="refunded",
                    outcome="parked",
                    outcome_detail="waiting: a pending payment cannot be refunded",
                    received_at=sa.func.clock_timestamp(),
                )
            )
        thread.join(timeout=60)
    finally:
        holder.close()

    assert answers == ["processed"]
    with committed_db.connect() as conn:
        status, refunded = conn.execute(
            sa.select(Payment.status, Payment.amount_refunded).where(Payment.id == payment.id)
        ).one()
        outcomes = conn.execute(
            sa.select(GatewayWebhook.gateway_event_id, GatewayWebhook.outcome).order_by(
                GatewayWebhook.gateway_event_id
            )
        ).all()
    assert (status, refunded) == ("refunded", AMOUNT)
    assert outcomes == [
        ("charge.success:72", "processed"),
        ("refund.processed:71", "processed"),
    ]


def test_a_transition_keeps_the_orm_payment_current_without_writing_it_again(
    dbsession, connection, settings
):
    merchant = create_merchant(dbsession, settings)
    payment = create_payment_row(dbsession, settings, merchant, amount=20_000)
    locked = lock_payment(dbsession, payment_id=payment.id)

    apply_transition(
        dbsession,
        locked,
        "completed",
        source="api",
        settings=settings,
        actor="operator:1",
        gateway_reference="gw_1",
        gateway_fee=100,
    )

    assert locked not in dbsession.dirty
    with Statements(connection) as statements:
        dbsession.flush()
        dbsession.execute(sa.text("SELECT 1"))
    assert statements.sent == ["SELECT 1"]  # the flush had nothing left to write
    stored = dbsession.execute(
        sa.select(
            Payment.status,
            Payment.version,
            Payment.gateway_reference,
            Payment.platform_fee,
            Payment.gateway_fee,
            Payment.net_amount,
            Payment.completed_at,
            Payment.updated_by,
        ).where(Payment.id == payment.id)
    ).one()
    assert tuple(stored) == (
        locked.status,
        locked.version,
        locked.gateway_reference,
        locked.platform_fee,
        locked.gateway_fee,
        locked.net_amount,
        locked.completed_at,
        locked.updated_by,
    )
    # 2.9 % + 30 of 20,000 = 610; net = amount - both fees
    assert (stored.status, stored.version, stored.platform_fee, stored.net_amount) == (
        "completed",
        2,
        610,
        20_000 - 610 - 100,
    )


def test_a_locked_payment_moves_as_an_orm_payment_would(dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    payment = create_payment_row(dbsession, settings, merchant, amount=20_000)

    locked = lock_payment_row(dbsession, payment.id)
    assert isinstance(locked, LockedPayment)
    assert (locked.reference, locked.metadata_, locked.status) == (payment.reference, {}, "pending")
    transition = apply_transition(
        dbsession,
        locked,
        "completed",
        source="webhook:paystack",
        settings=settings,
        actor="gateway:paystack",
        correlation_id="corr-7",
    )

    assert getattr(transition, PARKED_WEBHOOKS) is False
    stored = reload(dbsession, payment)
    assert (stored.status, stored.version, stored.net_amount, stored.completed_at) == (
        "completed",
        2,
        locked.net_amount,
        transition.created_at,
    )
    recorded = dbsession.execute(
        sa.select(PaymentTransition).where(PaymentTransition.id == transition.id)
    ).scalar_one()
    assert (recorded.from_status, recorded.to_status, recorded.actor) == (
        "pending",
        "completed",
        "gateway:paystack",
    )
    event = dbsession.execute(
        sa.select(OutboxEvent).where(OutboxEvent.payment_id == payment.id)
    ).scalar_one()
    assert (event.type, event.correlation_id, event.created_at) == (
        "payment.completed",
        "corr-7",
        transition.created_at,
    )
    assert event.next_attempt_at == event.created_at and event.published_at is None
    # the event carries the payment exactly as the API shows it after the move
    assert event.data == json.loads(json.dumps(payment_event_data(stored, settings.public_url)))


def test_a_transition_with_an_unknown_column_is_refused(dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    payment = create_payment_row(dbsession, settings, merchant)

    with pytest.raises(TypeError):
        apply_transition(dbsession, payment, "completed", source="api", settings=settings, nope=1)

    assert reload(dbsession, payment).status == "pending"


def test_a_lock_of_no_payment_is_none(dbsession):
    assert lock_payment_row(dbsession, uuid.uuid4()) is None


def test_a_simulated_delivery_keeps_its_reference_and_payload(
    testapp, dbsession, merchant, make_payment
):
    owner, headers = merchant
    payment = make_payment(owner)

    testapp.post_json(
        f"{WEBHOOKS}/simulate",
        {"reference": payment.reference, "status": "completed"},
        headers=headers,
    )

    (delivery,) = deliveries(dbsession, "simulation")
    assert delivery.reference == payment.reference
    assert delivery.payload["reference"] == payment.reference
    assert delivery.payload["status"] == "completed"
    assert (delivery.outcome, delivery.merchant_id) == ("processed", owner.id)


def test_a_statement_run_through_psycopg_fails_as_any_other_would(dbsession):
    """Retries (40001, 40P01) and the 503 of a lost database read SQLAlchemy's exceptions."""
    with pytest.raises(sa.exc.OperationalError) as caught:
        run_statement(
            dbsession,
            "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$",
            {},
            fetch=None,
        )

    assert caught.value.orig.sqlstate == "40001"
    assert isinstance(caught.value.orig, psycopg.errors.SerializationFailure)
