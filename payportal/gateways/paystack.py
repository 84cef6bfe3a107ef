"""Paystack webhooks: hex HMAC-SHA512 of the raw body, charge and refund events.

Paystack amounts are in the minor unit (kobo, pesewas, cents). It sends no event id, so ours is
the event name plus the id of the object the event is about.
"""

from __future__ import annotations

from collections.abc import Mapping

from payportal.gateways.signatures import verify_paystack_signature
from payportal.gateways.updates import (
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

GATEWAY = "paystack"
OBJECT_ID_MAX = 150  # event name (100) + ':' + object id stays within the 255 of the column

EVENT_ACTIONS = {
    "charge.success": "completed",
    "charge.failed": "failed",
    "refund.processed": REFUND,
    "charge.dispute.create": "disputed",
}


def parse_paystack_event(raw: bytes | str) -> GatewayUpdate:
    document = load_event_document(raw)
    event_type = required_text(document.get("event"), "event", EVENT_TYPE_MAX)
    data = document.get("data")
    if not isinstance(data, dict):
        raise MalformedEvent("data is missing")
    action = EVENT_ACTIONS.get(event_type)
    object_id = data.get("id")
    if object_id is None and action == REFUND:
        # some refund notifications carry only the refund's own reference
        object_id = data.get("refund_reference")
    object_id = required_text(object_id, "data.id", OBJECT_ID_MAX)
    reference = data.get("reference")
    facts: dict = {"currency": currency_field(data.get("currency")) if action else None}
    if action in ("completed", "failed"):
        facts["amount"] = minor_amount(data.get("amount"), "data.amount")
        facts["gateway_reference"] = object_id
        if action == "completed":
            facts["gateway_fee"] = minor_amount(data.get("fees"), "data.fees")
        else:
            facts["failure_code"] = "charge_failed"
            facts["failure_reason"] = text_field(data.get("gateway_response"), 1000)
    elif action == REFUND:
        reference = data.get("transaction_reference")
        facts["refund_amount"] = minor_amount(data.get("amount"), "data.amount")
        facts["refund_id"] = object_id
        if facts["refund_amount"] is None:
            raise MalformedEvent("data.amount is missing")
    elif action == "disputed":
        reference = reference or dig(data, "transaction", "reference")
        facts["failure_reason"] = text_field(data.get("category") or data.get("reason"), 1000)
    return GatewayUpdate(
        gateway=GATEWAY,
        event_id=f"{event_type}:{object_id}",
        event_type=event_type,
        reference=reference_field(reference),
        action=action,
        **facts,
    )


def verify_paystack_request(secret: str, headers: Mapping[str, str], raw: bytes) -> None:
    verify_paystack_signature(secret, headers.get("x-paystack-signature"), raw)


PAYSTACK = GatewayScheme(
    name=GATEWAY,
    endpoint="paystack",
    setting="paystack_secret_key",
    variable="PAYSTACK_SECRET_KEY",
    signature_header="x-paystack-signature",
    verify=verify_paystack_request,
    parse=parse_paystack_event,
)
