"""Appending events to the transactional outbox (more of the events slice lives beside it)."""

from __future__ import annotations

import uuid
from typing import Any

from payportal.db import utcnow
from payportal.events.models import OutboxEvent

# session.info key: ids of events appended in the session's current transaction
NEW_EVENT_IDS = "payportal.new_event_ids"

EVENT_TYPES = (
    "payment.initiated",
    "payment.processing",
    "payment.completed",
    "payment.failed",
    "payment.cancelled",
    "payment.expired",
    "payment.refunded",
    "payment.partially_refunded",
    "payment.disputed",
    "payment_method.created",
    "payment_method.updated",
    "merchant.status_changed",
)


def append_event(
    session,
    *,
    merchant_id: uuid.UUID,
    type: str,
    data: dict[str, Any],
    payment_id: uuid.UUID | None = None,
    correlation_id: str | None = None,
) -> OutboxEvent:
    """Record an event in the caller's transaction: it exists exactly if the change commits.

    `data` is the object as the API shows it (JSON-ready). The event is published after commit.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    event = OutboxEvent(
        id=uuid.uuid4(),
        merchant_id=merchant_id,
        type=type,
        payment_id=payment_id,
        data=data,
        correlation_id=correlation_id,
        created_at=utcnow(),
    )
    session.add(event)
    session.info.setdefault(NEW_EVENT_IDS, []).append(event.id)
    return event


def envelope(event: OutboxEvent) -> dict[str, Any]:
    """The event as SQS, the API and merchant webhooks show it."""
    return {
        "id": str(event.id),
        "type": event.type,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "merchant_id": str(event.merchant_id),
        "correlation_id": event.correlation_id,
        "data": event.data,
    }
