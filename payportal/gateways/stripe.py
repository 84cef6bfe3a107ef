"""Stripe webhooks: Stripe-Signature over the raw body, events mapped onto payment statuses.

Our payment reference travels in the object's `metadata.reference` (charges and disputes
without it are matched by their payment intent); Stripe amounts are already in minor units and
currencies are lower-case.
"""

from __future__ import annotations

from collections.abc import Mapping

from payportal.gateways.signatures import verify_stripe_signature
from payportal.gateways.updates import (
    EVENT_ID_MAX,
    EVENT_TYPE_MAX,
    REFUND,
    GatewayScheme,
    GatewayUpdate,
    MalformedEvent,
    currency_field,
    dig,
    load_event_document,
    minor_amount,
    reference_field,
    required_text,
    text_field,
)

GATEWAY = "stripe"

EVENT_ACTIONS = {
    "payment_intent.succeeded": "completed",
    "payment_intent.payment_failed": "failed",
    "payment_intent.processing": "processing",
    "payment_intent.canceled": "cancelled",
    "charge.refunded": REFUND,
    "charge.dispute.created": "disputed",
}


def _latest_refund_id(charge: dict) -> str | None:
    # Stripe lists a charge's refunds newest first
    refunds = dig(charge, "refunds", "data")
    if isinstance(refunds, list) and refunds and isinstance(refunds[0], dict):
        return text_field(refunds[0].get("id"), 255)
    return None


def parse_stripe_event(raw: bytes | str) -> GatewayUpdate:
    document = load_event_document(raw)
    event_id = required_text(document.get("id"), "id", EVENT_ID_MAX)
    event_type = required_text(document.get("type"), "type", EVENT_TYPE_MAX)
    obj = dig(document, "data", "object")
    if not isinstance(obj, dict):
        raise MalformedEvent("data.object is missing")
    action = EVENT_ACTIONS.get(event_type)
    facts: dict = {
        "currency": currency_field(obj.get("currency")) if action else None,
    }
    if event_type.startswith("payment_intent.") and action:
        facts["amount"] = minor_amount(obj.get("amount"), "data.object.amount")
        facts["gateway_reference"] = text_field(obj.get("id"), 255)
        if action == "failed":
            error = obj.get("last_payment_error") or {}
            code = dig(error, "decline_code") or dig(error, "code")
            facts["failure_code"] = text_field(code, 100) or "payment_failed"
            facts["failure_reason"] = text_field(dig(error, "message"), 1000)
        elif action == "cancelled":
            facts["failure_reason"] = text_field(obj.get("cancellation_reason"), 1000)
    elif action == REFUND:
        facts["amount"] = minor_amount(obj.get("amount"), "data.object.amount")
        facts["gateway_reference"] = text_field(obj.get("payment_intent") or obj.get("id"), 255)
        facts["refund_amount"] = minor_amount(
            obj.get("amount_refunded"), "data.object.amount_refunded"
        )
        facts["refund_is_cumulative"] = True
        facts["refund_id"] = _latest_refund_id(obj)
        if facts["refund_amount"] is None:
            raise MalformedEvent("data.object.amount_refunded is missing")
    elif action == "disputed":
        # a dispute may cover part of the charge, so only its currency must match
        facts["failure_reason"] = text_field(obj.get("reason"), 1000)
        facts["gateway_reference"] = text_field(obj.get("payment_intent"), 255)
    return GatewayUpdate(
        gateway=GATEWAY,
        event_id=event_id,
        event_type=event_type,
        reference=reference_field(dig(obj, "metadata", "reference")),
        action=action,
        **facts,
    )


def verify_stripe_request(secret: str, headers: Mapping[str, str], raw: bytes) -> None:
    verify_stripe_signature(secret, headers.get("Stripe-Signature"), raw)


STRIPE = GatewayScheme(
    name=GATEWAY,
    endpoint="stripe",
    setting="stripe_webhook_secret",
    variable="STRIPE_WEBHOOK_SECRET",
    signature_header="Stripe-Signature",
    verify=verify_stripe_request,
    parse=parse_stripe_event,
)
