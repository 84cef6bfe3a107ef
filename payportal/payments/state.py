"""The payment state machine: the only code that changes a payment's status.

A transition locks the payment row, checks the table, stamps the phase timestamp, bumps
`version`, records a payment_transitions row and appends the outbox event — all in the caller's
transaction. Completing a payment fixes its fees; from then on `net_amount` is always
amount - fees - amount_refunded. Listeners registered with `on_transition` run right after, in
the same transaction (gateways use it to apply webhooks that arrived early).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import sqlalchemy as sa

from payportal.db import utcnow
from payportal.errors import Conflict, NotFound, ValidationFailed
from payportal.events.services import append_event
from payportal.money import platform_fee
from payportal.payments.models import Payment, PaymentStatus, PaymentTransition
from payportal.payments.schemas import payment_event_data

S = PaymentStatus

ALLOWED: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    S.PENDING: frozenset({S.PROCESSING, S.COMPLETED, S.FAILED, S.CANCELLED, S.EXPIRED}),
    S.PROCESSING: frozenset({S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.COMPLETED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED, S.DISPUTED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REFUNDED: frozenset(),
    S.DISPUTED: frozenset(),
}
TERMINAL = frozenset(status for status, targets in ALLOWED.items() if not targets)
# statuses in which the money was taken: fees are fixed and net_amount is known
SETTLED = frozenset({S.COMPLETED, S.PARTIALLY_REFUNDED, S.REFUNDED, S.DISPUTED})

# the phase timestamp each target status stamps
PHASE_COLUMN = {
    S.PROCESSING: "processing_at",
    S.COMPLETED: "completed_at",
    S.FAILED: "failed_at",
    S.CANCELLED: "cancelled_at",
    S.EXPIRED: "expired_at",
    S.REFUNDED: "refunded_at",
    S.DISPUTED: "disputed_at",
}

EVENT_TYPE = {
    S.PROCESSING: "payment.processing",
    S.COMPLETED: "payment.completed",
    S.FAILED: "payment.failed",
    S.CANCELLED: "payment.cancelled",
    S.EXPIRED: "payment.expired",
    S.PARTIALLY_REFUNDED: "payment.partially_refunded",
    S.REFUNDED: "payment.refunded",
    S.DISPUTED: "payment.disputed",
}


class InvalidTransition(Conflict):
    code = "invalid_transition"

    def __init__(self, current: PaymentStatus, target: PaymentStatus):
        super().__init__(
            f"a payment cannot go from {current} to {target}",
            details=[{"field": "status", "message": f"{current} -> {target} is not allowed"}],
        )
        self.current = current
        self.target = target


class PaymentNotFound(NotFound):
    def __init__(self, reference: str):
        super().__init__(f"no payment {reference!r}")


TransitionListener = Callable[..., None]
_listeners: list[TransitionListener] = []


def on_transition(listener: TransitionListener) -> TransitionListener:
    """Register `listener(session, payment, transition, settings)`; runs after each transition."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def can_transition(current: PaymentStatus, target: PaymentStatus) -> bool:
    return target in ALLOWED[current]


def is_reachable(current: PaymentStatus, target: PaymentStatus) -> bool:
    """Can `target` still happen later from `current` (through any path)?"""
    seen: set[PaymentStatus] = set()
    frontier = set(ALLOWED[current])
    while frontier:
        status = frontier.pop()
        if status == target:
            return True
        seen.add(status)
        frontier |= ALLOWED[status] - seen
    return False


def lock_payment(
    session,
    *,
    merchant_id: uuid.UUID | None = None,
    reference: str | None = None,
    payment_id: uuid.UUID | None = None,
) -> Payment:
    """SELECT ... FOR UPDATE the payment (scoped to the merchant when one is given)."""
    stmt = sa.select(Payment).with_for_update()
    if payment_id is not None:
        stmt = stmt.where(Payment.id == payment_id)
    else:
        stmt = stmt.where(Payment.reference == reference)
    if merchant_id is not None:
        stmt = stmt.where(Payment.merchant_id == merchant_id)
    payment = session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()
    if payment is None:
        raise PaymentNotFound(reference or str(payment_id))
    return payment


def apply_transition(
    session,
    payment: Payment,
    target: PaymentStatus | str,
    *,
    source: str,
    settings,
    actor: str | None = None,
    reason: str | None = None,
    correlation_id: str | None = None,
    **changes,
) -> PaymentTransition:
    """Move a payment (already locked by `lock_payment`) to `target`, or raise InvalidTransition.

    `changes` are column values set together with the status (gateway_reference, failure_code,
    failure_reason, amount_refunded, gateway_fee, net_amount, ...).
    """
    target = PaymentStatus(target)
    current = PaymentStatus(payment.status)
    if not can_transition(current, target):
        raise InvalidTransition(current, target)
    gateway_fee = changes.get("gateway_fee")
    if gateway_fee is not None and not 0 <= gateway_fee <= payment.amount:
        raise ValidationFailed(
            "gateway_fee must be between 0 and the payment amount",
            details=[{"field": "gateway_fee", "message": "out of range"}],
        )
    now = utcnow()
    for column, value in changes.items():
        setattr(payment, column, value)
    payment.status = target
    if target is S.COMPLETED:
        payment.platform_fee = platform_fee(
            payment.amount,
            payment.currency,
            settings.platform_fee_percent,
            settings.platform_fee_fixed,
        )
        payment.gateway_fee = payment.gateway_fee or 0
    if target in SETTLED:
        # derived on every settled transition, so refunds can never let it drift
        payment.net_amount = (
            payment.amount - payment.platform_fee - payment.gateway_fee - payment.amount_refunded
        )
    column = PHASE_COLUMN.get(target)
    if column is not None:
        setattr(payment, column, now)
    payment.version = payment.version + 1
    payment.updated_at = now
    payment.updated_by = actor
    transition = PaymentTransition(
        payment_id=payment.id,
        merchant_id=payment.merchant_id,
        from_status=current,
        to_status=target,
        source=source,
        actor=actor,
        reason=reason,
        created_at=now,
    )
    session.add(transition)
    append_event(
        session,
        merchant_id=payment.merchant_id,
        type=EVENT_TYPE[target],
        data=payment_event_data(payment, settings.public_url),
        payment_id=payment.id,
        correlation_id=correlation_id,
    )
    session.flush()
    for listener in list(_listeners):
        listener(session, payment, transition, settings)
    return transition
