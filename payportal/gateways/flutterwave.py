"""Flutterwave webhooks: v3's verif-hash or the flutterwave-signature body HMAC; charge.completed.

Flutterwave amounts are in major units (100.50 NGN), converted exactly to minor units here.
v3 events say `event` and carry `data.tx_ref`; v4 events say `type`, carry an `id` of their own
and `data.reference`.
"""

from __future__ import annotations

from collections.abc import Mapping

from payportal.gateways.signatures import verify_flutterwave_signature
from payportal.gateways.updates import (
    EVENT_ID_MAX,
    EVENT_TYPE_MAX,
    GatewayScheme,
    GatewayUpdate,
    MalformedEvent,
    currency_field,
    load_event_document,
    major_amount,
    reference_field,
    required_text,
    rounded_major_amount,
    text_field,
)

GATEWAY = "flutterwave"
OBJECT_ID_MAX = 100

CHARGE_COMPLETED = "charge.completed"
STATUS_ACTIONS = {"successful": "completed", "succeeded": "completed", "failed": "failed"}


def parse_flutterwave_event(raw: bytes | str) -> GatewayUpdate:
    document = load_event_document(raw)
    event_type = required_text(
        document.get("event") or document.get("type"), "event", EVENT_TYPE_MAX
    )
    data = document.get("data")
    if not isinstance(data, dict):
        raise MalformedEvent("data is missing")
    status = text_field(data.get("status"), 30)
    if "id" in document and "type" in document:
        event_id = required_text(document.get("id"), "id", EVENT_ID_MAX)
    else:
        # v3 has no event id: one transaction reaches one final status once
        object_id = required_text(data.get("id"), "data.id", OBJECT_ID_MAX)
        event_id = f"{event_type}:{object_id}:{status or ''}"
    action = STATUS_ACTIONS.get((status or "").lower()) if event_type == CHARGE_COMPLETED else None
    facts: dict = {}
    if action:
        currency = currency_field(data.get("currency"))
        facts["currency"] = currency
        facts["amount"] = major_amount(data.get("amount"), currency, "data.amount")
        facts["gateway_reference"] = text_field(data.get("id"), 255)
        if action == "completed":
            facts["gateway_fee"] = rounded_major_amount(data.get("app_fee"), currency, "app_fee")
        else:
            facts["failure_code"] = "charge_failed"
            facts["failure_reason"] = text_field(data.get("processor_response"), 1000)
    return GatewayUpdate(
        gateway=GATEWAY,
        event_id=event_id,
        event_type=event_type,
        reference=reference_field(data.get("tx_ref") or data.get("reference")),
        action=action,
        **facts,
    )


def verify_flutterwave_request(secret: str, headers: Mapping[str, str], raw: bytes) -> None:
    verify_flutterwave_signature(
        secret, headers.get("verif-hash"), headers.get("flutterwave-signature"), raw
    )


FLUTTERWAVE = GatewayScheme(
    name=GATEWAY,
    endpoint="flutterwave",
    setting="flutterwave_secret_hash",
    variable="FLUTTERWAVE_SECRET_HASH",
    signature_header="verif-hash",
    verify=verify_flutterwave_request,
    parse=parse_flutterwave_event,
)
