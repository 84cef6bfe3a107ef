"""Payment domain services: initialize, change status, refund, find, list and the timeline."""

from __future__ import annotations

import secrets

import sqlalchemy as sa

from payportal.errors import ValidationFailed
from payportal.payments.models import Payment, PaymentStatus, Refund, RefundStatus
from payportal.payments.state import InvalidTransition, apply_transition

S = PaymentStatus

REFUNDABLE = frozenset({S.COMPLETED, S.PARTIALLY_REFUNDED})


def new_reference(prefix: str) -> str:
    """`pay_` / `re_` + 24 url-safe random characters (144 bits)."""
    return prefix + secrets.token_urlsafe(18)


def refund_payment(
    session,
    settings,
    payment: Payment,
    *,
    amount: int | None,
    reason: str | None,
    source: str,
    actor: str | None,
    correlation_id: str | None,
    gateway_refund_id: str | None = None,
) -> Refund:
    """Refund `amount` (default: what is left) of a payment the caller has already locked.

    Writes the refund row and moves the payment to partially_refunded or refunded through the
    state machine (one event). A gateway refund id seen before for this payment returns that
    refund and changes nothing, so a gateway repeating itself never refunds twice.
    """
    if gateway_refund_id is not None:
        seen = session.execute(
            sa.select(Refund).where(
                Refund.payment_id == payment.id, Refund.gateway_refund_id == gateway_refund_id
            )
        ).scalar_one_or_none()
        if seen is not None:
            return seen
    left = payment.amount - payment.amount_refunded
    current = PaymentStatus(payment.status)
    if current not in REFUNDABLE:
        wanted = S.REFUNDED if amount is None or amount >= left else S.PARTIALLY_REFUNDED
        raise InvalidTransition(current, wanted)
    if amount is None:
        amount = left
    if amount <= 0:
        raise ValidationFailed(
            "amount must be greater than 0",
            details=[{"field": "amount", "message": "must be greater than 0"}],
        )
    if amount > left:
        raise ValidationFailed(
            f"amount {amount} is more than the {left} left to refund",
            details=[{"field": "amount", "message": f"must be at most {left}"}],
        )
    refunded = payment.amount_refunded + amount
    refund = Refund(
        reference=new_reference("re_"),
        payment_id=payment.id,
        merchant_id=payment.merchant_id,
        amount=amount,
        currency=payment.currency,
        reason=reason,
        status=RefundStatus.SUCCEEDED,
        source=source,
        gateway_refund_id=gateway_refund_id,
        created_by=actor,
        updated_by=actor,
    )
    session.add(refund)
    apply_transition(
        session,
        payment,
        S.REFUNDED if refunded == payment.amount else S.PARTIALLY_REFUNDED,
        source=source,
        settings=settings,
        actor=actor,
        reason=reason,
        correlation_id=correlation_id,
        amount_refunded=refunded,
    )
    return refund
