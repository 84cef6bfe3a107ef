"""Request and response shapes of the events and webhook-endpoints API (pydantic v2)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from payportal.events.services import EVENT_TYPES
from payportal.pagination import ListQuery, Page
from payportal.payment_methods.cards import RefusesCardNumbers
from payportal.timestamps import Timestamp

EventType = Literal[EVENT_TYPES]
Subscription = Literal[(*EVENT_TYPES, "*")]


class EventListQuery(ListQuery):
    type: EventType | None = Field(None, description="only events of this type")


class EventOut(BaseModel):
    """The event envelope, exactly as SQS and webhook deliveries carry it."""

    id: uuid.UUID
    type: str
    created_at: Timestamp
    merchant_id: uuid.UUID
    correlation_id: str | None
    data: dict[str, Any]


class WebhookEndpointCreate(RefusesCardNumbers):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(min_length=1, max_length=2000, description="http(s) URL receiving POSTs")
    events: list[Subscription] = Field(
        min_length=1,
        max_length=len(EVENT_TYPES),
        description='event types to receive, or ["*"] for all',
    )
    description: str | None = Field(None, max_length=500)


class WebhookEndpointUpdate(RefusesCardNumbers):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str | None = Field(None, min_length=1, max_length=2000)
    events: list[Subscription] | None = Field(None, min_length=1, max_length=len(EVENT_TYPES))
    enabled: bool | None = None


class WebhookEndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str | None
    events: list[str]
    enabled: bool
    created_at: Timestamp
    updated_at: Timestamp


class WebhookEndpointCreated(WebhookEndpointOut):
    secret: str = Field(description="whsec_...: signs every delivery; shown only this once")


class DeliveryAttemptOut(BaseModel):
    attempted_at: Timestamp
    status_code: int | None
    latency_ms: int | None
    error: str | None
    next_retry_at: Timestamp | None


class DeliveryOut(BaseModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempt_count: int
    next_attempt_at: Timestamp | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: Timestamp | None
    created_at: Timestamp
    attempts: list[DeliveryAttemptOut] = Field(description="every attempt, oldest first")


EventPage = Page[EventOut]
WebhookEndpointPage = Page[WebhookEndpointOut]
DeliveryPage = Page[DeliveryOut]
