"""Request and response shapes of the gateway webhook endpoints (pydantic v2)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from payportal.payment_methods.cards import RefusesCardNumbers
from payportal.payments.schemas import PaymentOut

# what a gateway is told; a mismatch is recorded as such but answered "ignored"
ReceiptOutcome = Literal["processed", "duplicate", "parked", "ignored"]
SimulatedStatus = Literal["processing", "completed", "failed", "cancelled", "refunded", "disputed"]


class WebhookReceipt(BaseModel):
    """Always 200 once the signature holds, so the gateway stops retrying."""

    model_config = ConfigDict(extra="forbid")

    received: Literal[True] = True
    outcome: ReceiptOutcome = Field(
        description="processed: applied now; duplicate: seen before, nothing changed; parked: "
        "arrived before the state it needs, applied after the payment's next transition; "
        "ignored: can never apply (terminal state, unknown reference, unhandled event type, "
        "amount or currency mismatch)"
    )


class SimulateGatewayOutcome(RefusesCardNumbers):
    model_config = ConfigDict(extra="forbid", strict=True)

    reference: str = Field(min_length=1, max_length=40, description="One of your payments")
    status: SimulatedStatus = Field(
        description="What the gateway reports; `refunded` refunds what is left"
    )
    gateway_reference: str | None = Field(None, min_length=1, max_length=255)
    failure_reason: str | None = Field(None, min_length=1, max_length=1000)


class SimulationReceipt(WebhookReceipt):
    payment: PaymentOut
