"""Applying gateway events to payments exactly once, whatever order they arrive in.

A verified delivery is first claimed in gateway_webhooks (INSERT ... ON CONFLICT DO NOTHING on
(gateway, gateway_event_id)): a concurrent repeat waits on that row and then finds it taken, so
only one request goes on to lock the payment and move it. The claim and the lock of the payment
it names are one statement, and the move and the delivery's outcome another: a webhook that
completes a payment costs two round trips. An update that arrived before the state it needs is
parked and applied by `apply_parked_webhooks` right after a later transition.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from payportal.db import run_statement
from payportal.gateways.flutterwave import FLUTTERWAVE
from payportal.gateways.generic import GENERIC
from payportal.gateways.models import GatewayWebhook, WebhookOutcome
from payportal.gateways.paystack import PAYSTACK
from payportal.gateways.stripe import STRIPE
from payportal.gateways.updates import REFUND, GatewayUpdate
from payportal.payments.models import Gateway, Payment, PaymentStatus, Refund
from payportal.payments.services import REFUNDABLE, refund_payment
from payportal.payments.state import (
    PARKED_WEBHOOKS,
    InvalidTransition,
    LockedPayment,
    apply_transition,
    can_transition,
    is_reachable,
    lock_payment,
    lock_payment_row,
    mark_changed,
    payment_select_list,
)

SCHEMES = {scheme.name: scheme for scheme in (GENERIC, STRIPE, PAYSTACK, FLUTTERWAVE)}
SIMULATION = "simulation"
# gateways a payment can name as its own (the generic format is not one of them)
GATEWAY_NAMES = frozenset(gateway.value for gateway in Gateway)
SIMULATED_STATUSES = ("processing", "completed", "failed", "cancelled", "refunded", "disputed")
DETAIL_MAX = 500

# session.info key: payments whose parked webhooks are being applied in this session right now
_APPLYING_PARKED = "payportal.gateways.applying_parked"

S = PaymentStatus


@dataclass(frozen=True)
class Decision:
    """What an update does to a payment as it stands: apply now, park, or record and ignore."""

    outcome: WebhookOutcome
    target: PaymentStatus | None = None
    detail: str | None = None


def webhook_source(gateway: str) -> str:
    return f"webhook:{gateway}"


def refund_to_apply(payment: Payment, update: GatewayUpdate) -> int | None:
    """Minor units this refund event adds (None: all that is left)."""
    if update.refund_amount is None:
        return None
    if update.refund_is_cumulative:
        return update.refund_amount - payment.amount_refunded
    return update.refund_amount


def _refund_target(payment: Payment, amount: int | None) -> PaymentStatus:
    left = payment.amount - payment.amount_refunded
    return S.REFUNDED if amount is None or amount >= left else S.PARTIALLY_REFUNDED


def decide(session, payment: Payment, update: GatewayUpdate) -> Decision:
    """Judge an update against the payment's current state (the payment is locked)."""
    if update.currency is not None and update.currency != payment.currency:
        return Decision(
            WebhookOutcome.MISMATCH,
            detail=f"event currency {update.currency} is not the payment's {payment.currency}",
        )
    if update.amount is not None and update.amount != payment.amount:
        return Decision(
            WebhookOutcome.MISMATCH,
            detail=f"event amount {update.amount} is not the payment's {payment.amount}",
        )
    if update.gateway_fee is not None and update.gateway_fee > payment.amount:
        return Decision(
            WebhookOutcome.MISMATCH,
            detail=f"gateway fee {update.gateway_fee} is more than the payment's {payment.amount}",
        )
    if update.action is None:
        return Decision(WebhookOutcome.IGNORED, detail=f"{update.event_type} is not acted on")
    current = PaymentStatus(payment.status)
    if update.action == REFUND:
        return _decide_refund(session, payment, update, current)
    target = PaymentStatus(update.action)
    if can_transition(current, target):
        return Decision(WebhookOutcome.PROCESSED, target)
    if is_reachable(current, target):
        return Decision(
            WebhookOutcome.PARKED, target, f"waiting: a {current} payment cannot be {target} yet"
        )
    return Decision(WebhookOutcome.IGNORED, target, f"a {current} payment cannot become {target}")


def _decide_refund(session, payment: Payment, update: GatewayUpdate, current) -> Decision:
    amount = refund_to_apply(payment, update)
    target = _refund_target(payment, amount)
    if current not in REFUNDABLE:
        if is_reachable(current, S.REFUNDED):
            return Decision(
                WebhookOutcome.PARKED, target, f"waiting: a {current} payment cannot be refunded"
            )
        return Decision(WebhookOutcome.IGNORED, target, f"a {current} payment cannot be refunded")
    if update.refund_id is not None and _refund_recorded(session, payment, update.refund_id):
        return Decision(WebhookOutcome.IGNORED, target, "this refund is already recorded")
    if amount is not None and amount <= 0:
        return Decision(WebhookOutcome.IGNORED, target, "already refunded up to this amount")
    left = payment.amount - payment.amount_refunded
    if amount is not None and amount > left:
        return Decision(
            WebhookOutcome.MISMATCH, target, f"refund of {amount} is more than the {left} left"
        )
    return Decision(WebhookOutcome.PROCESSED, target)


def _refund_recorded(session, payment: Payment, gateway_refund_id: str) -> bool:
    return (
        session.execute(
            sa.select(Refund.id).where(
                Refund.payment_id == payment.id, Refund.gateway_refund_id == gateway_refund_id
            )
        ).first()
        is not None
    )


def apply_update(
    session,
    settings,
    payment: Payment | LockedPayment,
    update: GatewayUpdate,
    *,
    actor: str,
    correlation_id: str | None,
    delivery: tuple[uuid.UUID, Decision] | None = None,
) -> None:
    """Carry out an update `decide` judged applicable, through the state machine.

    `delivery`: the delivery row and its decision, recorded with the payment's id, in the
    transition's own statement (refunds record it after, with a statement of its own).
    """
    source = webhook_source(update.gateway)
    reason = update.failure_reason or f"{update.gateway} {update.event_type}"
    if update.action == REFUND:
        refund_payment(
            session,
            settings,
            payment,
            amount=refund_to_apply(payment, update),
            reason=reason,
            source=source,
            actor=actor,
            correlation_id=correlation_id,
            gateway_refund_id=update.refund_id,
        )
        if delivery is not None:
            _record_outcome(session, delivery[0], delivery[1], payment)
        return
    target = PaymentStatus(update.action)
    changes: dict = {}
    if update.gateway_reference:
        changes["gateway_reference"] = update.gateway_reference
    if target is S.FAILED:
        changes["failure_code"] = update.failure_code or "payment_failed"
        changes["failure_reason"] = update.failure_reason
    if target is S.COMPLETED and update.gateway_fee is not None:
        # the state machine fixes the fees and net_amount at completion
        changes["gateway_fee"] = update.gateway_fee
    apply_transition(
        session,
        payment,
        target,
        source=source,
        settings=settings,
        actor=actor,
        reason=reason,
        correlation_id=correlation_id,
        also=None if delivery is None else _outcome_statement(delivery[0], delivery[1], payment),
        **changes,
    )


# the delivery claimed and, in the same statement, the payment it names locked (only when the
# claim succeeded: a repeat of a delivery takes no lock); its row is (delivery id or nothing,
# then the payment's columns, all NULL when no payment has the reference)
_CLAIM_AND_LOCK = """
WITH claim AS (
    INSERT INTO gateway_webhooks
        (id, gateway, gateway_event_id, event_type, signature_valid, payload, reference,
         received_at)
    VALUES (%(id)s, %(gateway)s, %(event_id)s, %(event_type)s, true, %(payload)s::jsonb,
            %(reference)s, clock_timestamp())
    ON CONFLICT (gateway, gateway_event_id) DO NOTHING
    RETURNING id
)
SELECT claim.id, locked.* FROM claim LEFT JOIN LATERAL (
    SELECT {columns} FROM payments
    WHERE payments.reference = %(lock_reference)s AND claim.id IS NOT NULL
    FOR UPDATE
) AS locked ON true
"""


@functools.cache
def _claim_and_lock_sql() -> str:
    return _CLAIM_AND_LOCK.format(columns=payment_select_list())


def _claim_delivery(
    session, update: GatewayUpdate, payload: str, *, lock: bool = False
) -> tuple[uuid.UUID | None, LockedPayment | None]:
    """Record the delivery (`payload`: its JSON text); None when (gateway, event id) was
    recorded before (a duplicate). With `lock`, also lock the payment of update.reference."""
    params = {
        "id": uuid.uuid4(),
        "gateway": update.gateway,
        "event_id": update.event_id,
        "event_type": update.event_type,
        # stored as the gateway sent it: PostgreSQL parses the text, numbers exact
        "payload": payload,
        "reference": update.reference,
        "lock_reference": update.reference if lock else None,
    }
    row = run_statement(session, _claim_and_lock_sql(), params)
    if row is None:
        return None, None
    mark_changed(session)
    payment = LockedPayment(row[1:])
    return row[0], (payment if payment.id is not None else None)


_FINAL_OUTCOME = (
    "UPDATE gateway_webhooks SET outcome = %(d_outcome)s, outcome_detail = %(d_detail)s,"
    " target_status = %(d_target)s, processed_at = now()"
)
# a parked delivery is not processed yet
_PARKED_OUTCOME = _FINAL_OUTCOME.replace("now()", "NULL")


def _outcome_statement(
    row_id: uuid.UUID, decision: Decision, payment: Payment | LockedPayment | None = None
) -> tuple[str, dict]:
    """The UPDATE recording a delivery's outcome (and its payment, when given)."""
    sql = _PARKED_OUTCOME if decision.outcome is WebhookOutcome.PARKED else _FINAL_OUTCOME
    params = {
        "d_id": row_id,
        "d_outcome": decision.outcome.value,
        "d_detail": (decision.detail or None) and decision.detail[:DETAIL_MAX],
        "d_target": decision.target.value if decision.target else None,
    }
    if payment is not None:
        sql += ", payment_id = %(d_payment_id)s, merchant_id = %(d_merchant_id)s"
        params["d_payment_id"] = payment.id
        params["d_merchant_id"] = payment.merchant_id
    return sql + " WHERE id = %(d_id)s", params


def _record_outcome(
    session,
    row_id: uuid.UUID,
    decision: Decision,
    payment: Payment | LockedPayment | None = None,
) -> None:
    sql, params = _outcome_statement(row_id, decision, payment)
    run_statement(session, sql, params, fetch=None)
    mark_changed(session)


def find_payment_id(session, update: GatewayUpdate) -> uuid.UUID | None:
    """The payment an event is about: by our reference, else by the gateway's own id for it.

    Stripe copies our metadata onto the payment intent only, so its charge and dispute events
    name the payment by the intent id, recorded as gateway_reference when the payment moved.
    """
    if update.reference is not None:
        return session.execute(
            sa.select(Payment.id).where(Payment.reference == update.reference)
        ).scalar_one_or_none()
    if update.gateway_reference is None or update.gateway not in GATEWAY_NAMES:
        return None
    matches = session.execute(
        sa.select(Payment.id)
        .where(
            Payment.gateway == update.gateway,
            Payment.gateway_reference == update.gateway_reference,
        )
        .limit(2)
    ).scalars()
    found = list(matches)
    return found[0] if len(found) == 1 else None


def receive_gateway_webhook(
    session, settings, update: GatewayUpdate, raw: bytes, *, correlation_id: str | None = None
) -> WebhookOutcome:
    """Record a verified delivery once and apply it (or park or ignore it); returns the outcome."""
    row_id, payment = _claim_delivery(session, update, raw.decode("utf-8"), lock=True)
    if row_id is None:
        return WebhookOutcome.DUPLICATE
    if payment is None and update.reference is None:
        # no reference of ours: the gateway's own id for the payment, then the lock
        payment_id = find_payment_id(session, update)
        if payment_id is not None:
            payment = lock_payment_row(session, payment_id)
    if payment is None:
        decision = Decision(WebhookOutcome.IGNORED, detail="no payment has this reference")
        _record_outcome(session, row_id, decision)
        return decision.outcome
    decision = decide(session, payment, update)
    if decision.outcome is WebhookOutcome.PROCESSED:
        apply_update(
            session,
            settings,
            payment,
            update,
            actor=f"gateway:{update.gateway}",
            correlation_id=correlation_id,
            delivery=(row_id, decision),
        )
    else:
        _record_outcome(session, row_id, decision, payment)
    return decision.outcome


def apply_parked_webhooks(session, payment: Payment | LockedPayment, transition, settings) -> None:
    """Transition listener: apply the payment's parked webhooks that the new state unlocks.

    In received order, again and again, since one applied update may unlock another. Parked
    updates that can now never apply are recorded as ignored. The transition says whether the
    payment had any parked (almost never): when it had none, there is nothing to look for.
    """
    if not getattr(transition, PARKED_WEBHOOKS, True):
        return
    busy = session.info.setdefault(_APPLYING_PARKED, set())
    if payment.id in busy:
        return  # our own application's transition: the loop below looks again anyway
    busy.add(payment.id)
    try:
        while _apply_next_parked(session, settings, payment):
            pass
    finally:
        busy.discard(payment.id)


def _apply_next_parked(session, settings, payment: Payment | LockedPayment) -> bool:
    """Apply the first parked webhook that can apply now; True if one did."""
    parked = session.execute(
        sa.select(
            GatewayWebhook.id,
            GatewayWebhook.gateway,
            sa.cast(GatewayWebhook.payload, sa.Text).label("payload_text"),
        )
        .where(
            GatewayWebhook.payment_id == payment.id,
            GatewayWebhook.outcome == WebhookOutcome.PARKED.value,
        )
        .order_by(GatewayWebhook.received_at, GatewayWebhook.id)
    ).all()
    for row in parked:
        update = SCHEMES[row.gateway].parse(row.payload_text)
        decision = decide(session, payment, update)
        if decision.outcome is WebhookOutcome.PARKED:
            continue
        if decision.outcome is WebhookOutcome.PROCESSED:
            apply_update(
                session,
                settings,
                payment,
                update,
                actor=f"gateway:{update.gateway}",
                correlation_id=None,
                delivery=(row.id, decision),
            )
            return True
        _record_outcome(session, row.id, decision)
    return False


def simulate_gateway_outcome(
    session,
    settings,
    *,
    merchant_id: uuid.UUID,
    reference: str,
    status: str,
    gateway_reference: str | None = None,
    failure_reason: str | None = None,
    actor: str,
    correlation_id: str | None = None,
) -> Payment:
    """Play a gateway's part for one of the merchant's own payments (test mode only).

    The same decide/apply path as a real webhook, recorded as a `simulation` delivery; an
    outcome the payment cannot take now is refused (409) rather than parked.
    """
    if status not in SIMULATED_STATUSES:
        raise ValueError(f"cannot simulate {status!r}")
    payment = lock_payment(session, merchant_id=merchant_id, reference=reference)
    update = GatewayUpdate(
        gateway=SIMULATION,
        event_id=f"sim_{uuid.uuid4().hex}",
        event_type=f"simulation.{status}",
        reference=reference,
        action=REFUND if status == "refunded" else status,
        gateway_reference=gateway_reference,
        failure_code="simulated_decline" if status == "failed" else None,
        failure_reason=failure_reason
        or ("Declined in a simulation" if status == "failed" else None),
    )
    decision = decide(session, payment, update)
    if decision.outcome is not WebhookOutcome.PROCESSED:
        target = decision.target or PaymentStatus(status)
        raise InvalidTransition(PaymentStatus(payment.status), target)
    payload = {
        "reference": reference,
        "status": status,
        "gateway_reference": gateway_reference,
        "failure_reason": failure_reason,
    }
    row_id, _ = _claim_delivery(session, update, json.dumps(payload))
    apply_update(
        session,
        settings,
        payment,
        update,
        actor=actor,
        correlation_id=correlation_id,
        delivery=(row_id, decision),
    )
    return payment
