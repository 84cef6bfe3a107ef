"""Request and response shapes of the payments API (pydantic v2)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.networks import validate_email

from payportal.money import SUPPORTED_CURRENCIES
from payportal.pagination import ListQuery, Page
from payportal.payment_methods.cards import RefusesCardNumbers
from payportal.payments.models import Gateway, Payment, PaymentStatus, Refund
from payportal.timestamps import Timestamp

if TYPE_CHECKING:
    from payportal.payments.state import LockedPayment

Currency = Literal[SUPPORTED_CURRENCIES]
# bigint columns: anything larger could never be stored
MinorUnits = Annotated[StrictInt, Field(gt=0, lt=2**63, description="in the currency's minor unit")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40)]
MetadataValue = Annotated[str, StringConstraints(max_length=500)] | StrictInt | StrictBool | None


# What almost every customer's address looks like: an ASCII dot-atom local part of at most 64
# characters and a host name of letter-digit-hyphen labels under a letters-only top-level
# domain. email_validator (pydantic's EmailStr) accepts each such address as it is, but spends
# ~85 us on it (Unicode and IDNA checks a character at a time; ~3 % of an initialize's CPU);
# _plain_email takes these at once and leaves everything else to it: non-ASCII, a "--" in the
# host (R-LDH and punycode labels), special-use domains, anything over 254 characters.
_PLAIN_EMAIL = re.compile(
    r"([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
_SPECIAL_USE = tuple(SPECIAL_USE_DOMAIN_NAMES)


def _plain_email(value: str) -> bool:
    if len(value) > 254 or (match := _PLAIN_EMAIL.fullmatch(value)) is None:
        return False
    local, host = match[1], match[2].lower()
    return (
        len(local) <= 64
        and "--" not in host
        and not any(host == name or host.endswith("." + name) for name in _SPECIAL_USE)
    )


def _customer_email(value: str) -> str:
    """EmailStr's check and normal form, lower-cased (the exact customer_email filter ignores
    case); plain addresses skip email_validator (see _PLAIN_EMAIL)."""
    if _plain_email(value):
        return value.lower()
    return validate_email(value)[1].lower()


CustomerEmail = Annotated[
    str,
    Field(max_length=320),
    AfterValidator(_customer_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 320}),
]


def checkout_url(public_url: str, reference: str) -> str:
    return f"{public_url.rstrip('/')}/checkout/{reference}"


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

    # Timestamps serialize as pydantic does UTC datetimes, "2025-05-01T12:00:00Z" (the format of
    # payportal.timestamps, without a Python call per field): every session runs with
    # TimeZone=UTC (payportal.db.make_engine) and the application makes its own times with
    # utcnow().

    @classmethod
    def from_row(cls, row, public_url: str) -> PaymentOut:
        """From a row of services.PAYMENT_COLUMNS."""
        values = row._asdict()
        values.pop("merchant_id", None)
        values["fee"] = (values.pop("platform_fee") or 0) + (values.pop("gateway_fee") or 0)
        values["metadata"] = values["metadata"] or {}
        values["checkout_url"] = checkout_url(public_url, values["reference"])
        return cls.model_validate(values)

    @classmethod
    def from_payment(cls, payment: Payment | LockedPayment, public_url: str) -> PaymentOut:
        """From the mapped Payment or payments.state.LockedPayment (rows: from_row)."""
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
            checkout_url=checkout_url(public_url, payment.reference),
            expires_at=payment.expires_at,
            completed_at=payment.completed_at,
            created_at=payment.created_at,
            updated_at=payment.updated_at,
        )


def payment_event_data(payment: Payment, public_url: str) -> dict[str, Any]:
    """The payment as events carry it: exactly what the API shows, JSON-ready."""
    return PaymentOut.from_payment(payment, public_url).model_dump(mode="json")


class InitializePayment(RefusesCardNumbers):
    model_config = ConfigDict(extra="forbid")
    phone_fields = frozenset({"customer_phone"})

    amount: MinorUnits
    currency: Currency
    gateway: Gateway = Gateway.INTERNAL
    payment_method_id: uuid.UUID | None = None
    description: Annotated[Text, Field(max_length=1000)] | None = None
    customer_email: CustomerEmail | None = None
    customer_name: Annotated[Text, Field(max_length=200)] | None = None
    customer_phone: (
        Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ()-]{3,38}$")] | None
    ) = None
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict, max_length=50, description="up to 50 keys of your own"
    )


class PaymentEnvelope(BaseModel):
    payment: PaymentOut


class PaymentList(Page[PaymentOut]):
    """A page of payments, newest first."""


class PaymentListQuery(ListQuery):
    status: PaymentStatus | None = None
    gateway: Gateway | None = None
    currency: Currency | None = None
    customer_email: str | None = Field(None, min_length=3, max_length=320)
    created_from: AwareDatetime | None = Field(None, description="created at or after (ISO 8601)")
    created_to: AwareDatetime | None = Field(None, description="created before (ISO 8601)")
    q: str | None = Field(
        None, min_length=1, max_length=320, description="reference or customer email prefix"
    )


class ChangeStatus(RefusesCardNumbers):
    model_config = ConfigDict(extra="forbid")

    status: PaymentStatus
    gateway_reference: Annotated[Text, Field(max_length=255)] | None = None
    failure_code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")] | None = (
        None
    )
    failure_reason: Annotated[Text, Field(max_length=1000)] | None = None

    @model_validator(mode="after")
    def _failure_only_when_failing(self) -> ChangeStatus:
        if self.status is not PaymentStatus.FAILED and (self.failure_code or self.failure_reason):
            raise ValueError("failure_code and failure_reason only go with status failed")
        return self


class CreateRefund(RefusesCardNumbers):
    model_config = ConfigDict(extra="forbid")

    amount: MinorUnits | None = Field(None, description="default: everything not yet refunded")
    reason: Annotated[Text, Field(max_length=1000)] | None = None


class RefundOut(BaseModel):
    id: uuid.UUID
    reference: str
    amount: int
    currency: str
    reason: str | None
    status: str
    created_at: Timestamp

    @classmethod
    def from_refund(cls, refund: Refund) -> RefundOut:
        return cls(
            id=refund.id,
            reference=refund.reference,
            amount=refund.amount,
            currency=refund.currency,
            reason=refund.reason,
            status=str(refund.status),
            created_at=refund.created_at,
        )


class RefundCreated(BaseModel):
    refund: RefundOut
    payment: PaymentOut


class _TimelineEntry(BaseModel):
    at: Timestamp


class TransitionEntry(_TimelineEntry):
    kind: Literal["transition"] = "transition"
    from_status: str | None
    to_status: str
    source: str
    actor: str | None
    reason: str | None


class RefundEntry(_TimelineEntry):
    kind: Literal["refund"] = "refund"
    reference: str
    amount: int
    currency: str
    reason: str | None
    source: str


class WebhookEntry(_TimelineEntry):
    kind: Literal["webhook"] = "webhook"
    gateway: str
    gateway_event_id: str
    event_type: str
    signature_valid: bool
    outcome: str | None


class EventEntry(_TimelineEntry):
    kind: Literal["event"] = "event"
    event_id: uuid.UUID
    type: str
    published_at: Timestamp | None


TimelineEntry = Annotated[
    TransitionEntry | RefundEntry | WebhookEntry | EventEntry, Field(discriminator="kind")
]


class PaymentTimeline(BaseModel):
    """Everything that happened to one payment, oldest first."""

    reference: str
    data: list[TimelineEntry]


class StatisticsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_: AwareDatetime | None = Field(
        None, alias="from", description="created at or after; default: 30 days before `to`"
    )
    to: AwareDatetime | None = Field(None, description="created before; default: now")
    currency: Currency | None = None

    @model_validator(mode="after")
    def _ordered(self) -> StatisticsQuery:
        if self.from_ is not None and self.to is not None and self.from_ >= self.to:
            raise ValueError("from must be before to")
        return self


class StatusTotals(BaseModel):
    status: str
    currency: str
    count: int
    amount: int


class CurrencyTotals(BaseModel):
    currency: str
    count: int
    settled_count: int = Field(description="completed, partially refunded, refunded or disputed")
    settled_amount: int
    amount_refunded: int
    fee: int
    net_amount: int


class StatisticsSummary(BaseModel):
    created_from: Timestamp
    created_to: Timestamp
    currency: str | None
    by_status: list[StatusTotals]
    by_currency: list[CurrencyTotals]
