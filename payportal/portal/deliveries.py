"""Where each event went: its webhook deliveries and their endpoint URLs, as the payment
timeline and the event page show them (read-only, scoped to the merchant)."""

from __future__ import annotations

import sqlalchemy as sa

from payportal.events.models import WebhookDelivery, WebhookEndpoint


def deliveries_by_event(session, merchant_id, event_ids: list) -> dict:
    """Each event's deliveries with their endpoint URL, for timelines and the event page."""
    found: dict = {}
    if not event_ids:
        return found
    rows = session.execute(
        sa.select(
            WebhookDelivery.event_id,
            WebhookDelivery.status,
            WebhookDelivery.last_status_code,
            WebhookDelivery.attempts,
            WebhookDelivery.endpoint_id,
            WebhookEndpoint.url,
        )
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.merchant_id == merchant_id, WebhookDelivery.event_id.in_(event_ids))
        .order_by(WebhookDelivery.created_at)
    )
    for row in rows:
        found.setdefault(row.event_id, []).append(row)
    return found
