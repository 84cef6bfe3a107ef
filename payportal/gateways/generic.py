"""The generic signed webhook format (webhooks/payment), for any gateway that speaks it.

X-Timestamp: <unix seconds>
X-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
{"event_id", "event", "reference", "status", "gateway_reference"?, "failure_code"?,
 "failure_message"?, "data"?: {"amount"?, "currency"?, "fee"?, "refund_amount"?, "refund_id"?}}
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from payportal.apiview import validation_details
from payportal.gateways.signatures import verify_generic_signature
from payportal.gateways.updates import (
    REFUND,
    GatewayScheme,
    GatewayUpdate,
    MalformedEvent,
    load_event_document,
    reference_field,
)

GATEWAY = "generic"

# statuses a generic event may report; refunds go through the refund service instead
STATUS_ACTIONS = {
    "processing": "processing",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "disputed": "disputed",
    "refunded": REFUND,
    "partially_refunded": REFUND,
}


class GenericEventData(BaseModel):
    # gateways add fields over time; the signature already proved who sent them
    model_config = ConfigDict(extra="ignore", strict=True)

    amount: int | None = Field(None, gt=0, description="The payment's amount, minor units")
    currency: str | None = Field(None, min_length=3, max_length=3)
    fee: int | None = Field(None, ge=0, description="The gateway's fee, minor units")
    refund_amount: int | None = Field(None, gt=0, description="This refund's amount")
    refund_id: str | None = Field(None, min_length=1, max_length=255)


class GenericEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    event_id: str = Field(min_length=1, max_length=255)
    event: str = Field(min_length=1, max_length=100)
    reference: str | None = None
    status: str = Field(min_length=1, max_length=30)
    gateway_reference: str | None = Field(None, max_length=255)
    failure_code: str | None = Field(None, max_length=100)
    failure_message: str | None = Field(None, max_length=1000)
    data: GenericEventData | None = None


def parse_generic_event(raw: bytes | str) -> GatewayUpdate:
    document = load_event_document(raw)
    try:
        event = GenericEvent.model_validate(document)
    except ValidationError as exc:
        details = validation_details(exc)
        first = details[0]
        raise MalformedEvent(f"{first['field']}: {first['message']}", details=details) from None
    data = event.data or GenericEventData()
    action = STATUS_ACTIONS.get(event.status)
    if event.status == "partially_refunded" and data.refund_amount is None:
        raise MalformedEvent(
            "a partial refund needs data.refund_amount",
            details=[{"field": "data.refund_amount", "message": "required for partially_refunded"}],
        )
    return GatewayUpdate(
        gateway=GATEWAY,
        event_id=event.event_id,
        event_type=event.event,
        reference=reference_field(event.reference),
        action=action,
        amount=data.amount,
        currency=data.currency.upper() if data.currency else None,
        gateway_reference=event.gateway_reference or None,
        failure_code=event.failure_code or None,
        failure_reason=event.failure_message or None,
        gateway_fee=data.fee,
        refund_amount=data.refund_amount if action == REFUND else None,
        refund_id=data.refund_id,
    )


def verify_generic_request(secret: str, headers: Mapping[str, str], raw: bytes) -> None:
    verify_generic_signature(secret, headers.get("X-Timestamp"), headers.get("X-Signature"), raw)


GENERIC = GatewayScheme(
    name=GATEWAY,
    endpoint="payment",
    setting="webhook_secret",
    variable="WEBHOOK_SECRET",
    signature_header="X-Signature",
    verify=verify_generic_request,
    parse=parse_generic_event,
)
