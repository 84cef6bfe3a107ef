"""Request and response shapes of the payments API (pydantic v2)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, field_serializer

from payportal.payments.models import Payment


def iso_z(value: dt.datetime | None) -> str | None:
    """ISO 8601 UTC with a Z, as the API contract shows every timestamp."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class PaymentOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    reference: str
    amount: int
    amount_refunded: int
    currency: str
    status: str
    gateway: str
    gateway_reference: str | None
    description: str | None
    customer_email: str | None
    customer_name: str | None
    customer_phone: str | None
    metadata: dict[str, Any]
    payment_method_id: uuid.UUID | None
    failure_code: str | None
    failure_reason: str | None
    fee: int
    net_amount: int | None
    checkout_url: str
    expires_at: dt.datetime | None
    completed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @field_serializer("expires_at", "completed_at", "created_at", "updated_at")
    def _timestamps(self, value: dt.datetime | None) -> str | None:
        return iso_z(value)

    @classmethod
    def from_payment(cls, payment: Payment, public_url: str) -> PaymentOut:
        return cls(
            id=payment.id,
            reference=payment.reference,
            amount=payment.amount,
            amount_refunded=payment.amount_refunded,
            currency=payment.currency,
            status=str(payment.status),
            gateway=str(payment.gateway),
            gateway_reference=payment.gateway_reference,
            description=payment.description,
            customer_email=payment.customer_email,
            customer_name=payment.customer_name,
            customer_phone=payment.customer_phone,
            metadata=payment.metadata_ or {},
            payment_method_id=payment.payment_method_id,
            failure_code=payment.failure_code,
            failure_reason=payment.failure_reason,
            fee=(payment.platform_fee or 0) + (payment.gateway_fee or 0),
            net_amount=payment.net_amount,
            checkout_url=f"{public_url.rstrip('/')}/checkout/{payment.reference}",
            expires_at=payment.expires_at,
            completed_at=payment.completed_at,
            created_at=payment.created_at,
            updated_at=payment.updated_at,
        )


def payment_event_data(payment: Payment, public_url: str) -> dict[str, Any]:
    """The payment as events carry it: exactly what the API shows, JSON-ready."""
    return PaymentOut.from_payment(payment, public_url).model_dump(mode="json")
