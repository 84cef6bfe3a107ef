"""refund_payment, the service gateways call from webhooks with the payment already locked."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from payportal.errors import ValidationFailed
from payportal.events.models import OutboxEvent
from payportal.payments.models import Payment, PaymentTransition, Refund
from payportal.payments.services import new_reference, refund_payment
from payportal.payments.state import InvalidTransition, apply_transition, lock_payment
from tests.factories import create_merchant


def _payment(session, settings, *, amount=10_000, currency="USD", status="pending") -> Payment:
    merchant = create_merchant(session, settings)
    payment = Payment(
        reference=new_reference("pay_"),
        merchant_id=merchant.id,
        amount=amount,
        currency=currency,
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30),
    )
    session.add(payment)
    session.flush()
    if status == "completed":
        apply_transition(session, payment, "completed", source="api", settings=settings)
    return payment


def _refund(session, settings, payment, **kwargs):
    locked = lock_payment(session, payment_id=payment.id)
    kwargs.setdefault("reason", None)
    return refund_payment(
        session,
        settings,
        locked,
        source="webhook:stripe",
        actor=None,
        correlation_id="c1",
        **kwargs,
    )


def test_partial_then_full_refund_updates_amounts_fees_and_events(dbsession, settings):
    payment = _payment(dbsession, settings, status="completed")
    # 2.9 % of 100.00 USD = 290, + 30 fixed
    assert (payment.platform_fee, payment.net_amount) == (320, 9_680)

    first = _refund(dbsession, settings, payment, amount=4_000, reason="damaged")
    assert (first.amount, first.currency, first.reason) == (4_000, "USD", "damaged")
    assert first.reference.startswith("re_")
    assert (payment.status, payment.amount_refunded, payment.net_amount) == (
        "partially_refunded",
        4_000,
        5_680,
    )

    _refund(dbsession, settings, payment, amount=None)
    assert (payment.status, payment.amount_refunded, payment.net_amount) == (
        "refunded",
        10_000,
        -320,
    )
    assert payment.refunded_at is not None
    types = dbsession.scalars(
        sa.select(OutboxEvent.type)
        .where(OutboxEvent.payment_id == payment.id)
        .order_by(OutboxEvent.created_at)
    ).all()
    assert types == ["payment.completed", "payment.partially_refunded", "payment.refunded"]
    transitions = dbsession.scalar(
        sa.select(sa.func.count()).where(PaymentTransition.payment_id == payment.id)
    )
    assert transitions == payment.version - 1  # this factory writes no initial transition


@pytest.mark.parametrize("amount", [0, -5, 10_001])
def test_amount_out_of_range_is_refused_and_nothing_changes(dbsession, settings, amount):
    payment = _payment(dbsession, settings, status="completed")
    with pytest.raises(ValidationFailed):
        _refund(dbsession, settings, payment, amount=amount)
    assert payment.amount_refunded == 0
    assert dbsession.scalar(sa.select(sa.func.count()).select_from(Refund)) == 0


def test_refund_of_a_pending_payment_is_an_invalid_transition(dbsession, settings):
    payment = _payment(dbsession, settings)
    with pytest.raises(InvalidTransition) as caught:
        _refund(dbsession, settings, payment, amount=None)
    assert "pending" in caught.value.message and "refunded" in caught.value.message


def test_a_gateway_refund_id_seen_before_refunds_nothing_more(dbsession, settings):
    payment = _payment(dbsession, settings, status="completed")
    first = _refund(dbsession, settings, payment, amount=1_000, gateway_refund_id="re_gw_1")
    again = _refund(dbsession, settings, payment, amount=1_000, gateway_refund_id="re_gw_1")
    assert again.id == first.id
    assert payment.amount_refunded == 1_000
