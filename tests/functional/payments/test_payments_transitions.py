"""Every allowed transition applied for real: row, timeline, version, event, timestamps, fees."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from payportal.errors import ValidationFailed
from payportal.events.models import OutboxEvent
from payportal.payments.models import PaymentTransition
from payportal.payments.state import (
    EVENT_TYPE,
    PHASE_COLUMN,
    apply_transition,
    lock_payment,
)
from tests.factories import create_merchant, create_payment
from tests.unit.payments.test_payments_state_table import EXPECTED


@pytest.mark.parametrize(("current", "target"), sorted(EXPECTED))
def test_allowed_transition_is_recorded(dbsession, settings, current, target):
    merchant = create_merchant(dbsession, settings)
    payment = create_payment(dbsession, settings, merchant, status=current)
    locked = lock_payment(dbsession, merchant_id=merchant.id, reference=payment.reference)
    version = locked.version
    transition = apply_transition(
        dbsession,
        locked,
        target,
        source="dashboard",
        settings=settings,
        actor="operator:1",
        reason="why not",
        correlation_id="corr-1",
    )
    assert (locked.status, locked.version) == (target, version + 1)
    assert (transition.from_status, transition.to_status, transition.source) == (
        current,
        target,
        "dashboard",
    )
    recorded = dbsession.scalar(
        sa.select(sa.func.count()).where(PaymentTransition.payment_id == locked.id)
    )
    assert recorded == locked.version
    event = dbsession.scalars(
        sa.select(OutboxEvent)
        .where(OutboxEvent.payment_id == locked.id)
        .order_by(OutboxEvent.created_at.desc())
        .limit(1)
    ).one()
    assert (event.type, event.correlation_id) == (EVENT_TYPE[target], "corr-1")
    assert event.data["status"] == target
    if target in PHASE_COLUMN:
        assert getattr(locked, PHASE_COLUMN[target]) == transition.created_at


def test_a_gateway_reported_fee_joins_the_platform_fee(dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    payment = create_payment(dbsession, settings, merchant, amount=20_000)
    apply_transition(
        dbsession, payment, "completed", source="webhook:stripe", settings=settings, gateway_fee=610
    )
    # 2.9 % of 20,000 = 580, + 30 fixed
    assert (payment.platform_fee, payment.gateway_fee) == (610, 610)
    assert payment.net_amount == 20_000 - 610 - 610
    event = dbsession.scalars(
        sa.select(OutboxEvent).where(
            OutboxEvent.type == "payment.completed", OutboxEvent.payment_id == payment.id
        )
    ).one()
    assert (event.data["fee"], event.data["net_amount"]) == (1_220, 18_780)


@pytest.mark.parametrize("gateway_fee", [-1, 20_001])
def test_an_impossible_gateway_fee_is_refused(dbsession, settings, gateway_fee):
    merchant = create_merchant(dbsession, settings)
    payment = create_payment(dbsession, settings, merchant, amount=20_000)
    with pytest.raises(ValidationFailed):
        apply_transition(
            dbsession,
            payment,
            "completed",
            source="webhook:stripe",
            settings=settings,
            gateway_fee=gateway_fee,
        )
    assert payment.status == "pending"
