"""JSON views: the merchant's events, webhook endpoints and their deliveries."""

from __future__ import annotations

from payportal.apiview import api_view
from payportal.events import endpoints as endpoint_services
from payportal.events.delivery import RetryPolicy, retry_delivery
from payportal.events.models import OutboxEvent, WebhookDelivery
from payportal.events.resources import (
    Delivery,
    DeliveryCollection,
    Event,
    EventCollection,
    WebhookEndpointCollection,
    WebhookEndpointResource,
)
from payportal.events.schemas import (
    DeliveryAttemptOut,
    DeliveryOut,
    DeliveryPage,
    EventListQuery,
    EventOut,
    EventPage,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointOut,
    WebhookEndpointPage,
    WebhookEndpointUpdate,
)
from payportal.events.services import list_events
from payportal.pagination import ListQuery
from payportal.security import Permission


def event_out(event: OutboxEvent) -> EventOut:
    return EventOut(
        id=event.id,
        type=event.type,
        created_at=event.created_at,
        merchant_id=event.merchant_id,
        correlation_id=event.correlation_id,
        data=event.data,
    )


def delivery_out(delivery: WebhookDelivery, attempts) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        status=str(delivery.status),
        attempt_count=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        delivered_at=delivery.delivered_at,
        created_at=delivery.created_at,
        attempts=[DeliveryAttemptOut.model_validate(a, from_attributes=True) for a in attempts],
    )


@api_view(
    context=EventCollection,
    method="GET",
    query=EventListQuery,
    response=EventPage,
    permission=Permission.EVENTS_READ,
    tag="Events",
    summary="List your events, newest first",
)
def list_events_view(context, request, query: EventListQuery):
    """Every event of this merchant, as recorded by the outbox (published to SQS or not)."""
    rows, has_more, next_cursor = list_events(
        request.dbsession,
        context.merchant_id,
        type=query.type,
        limit=query.limit,
        cursor=query.cursor,
    )
    return EventPage(data=[event_out(e) for e in rows], has_more=has_more, next_cursor=next_cursor)


@api_view(
    context=Event,
    method="GET",
    response=EventOut,
    permission=Permission.EVENTS_READ,
    tag="Events",
    summary="Get one event",
)
def get_event_view(context, request):
    """The event envelope, as SQS and webhook deliveries carry it."""
    return event_out(context.obj)


@api_view(
    context=WebhookEndpointCollection,
    method="POST",
    body=WebhookEndpointCreate,
    response=WebhookEndpointCreated,
    status=201,
    permission=Permission.WEBHOOKS_MANAGE,
    # a stored response would keep the signing secret in clear for a day: a retry makes a new one
    idempotent=False,
    tag="Webhook endpoints",
    summary="Add a webhook endpoint",
    request_example={"url": "https://example.com/payportal/webhooks", "events": ["*"]},
)
def create_endpoint_view(context, request, body: WebhookEndpointCreate):
    """Events of the chosen types are POSTed to the URL, signed with the returned `secret`
    (shown only in this response). URLs must be http(s) and reach a public address."""
    endpoint, secret = endpoint_services.create_endpoint(
        request.dbsession,
        request.registry.keyring,
        request.app_settings,
        merchant_id=context.merchant_id,
        url=body.url,
        events=body.events,
        description=body.description,
        actor=request.identity.actor,
    )
    out = WebhookEndpointOut.model_validate(endpoint, from_attributes=True)
    return WebhookEndpointCreated(**out.model_dump(), secret=secret)


@api_view(
    context=WebhookEndpointCollection,
    method="GET",
    query=ListQuery,
    response=WebhookEndpointPage,
    permission=Permission.WEBHOOKS_MANAGE,
    tag="Webhook endpoints",
    summary="List your webhook endpoints",
)
def list_endpoints_view(context, request, query: ListQuery):
    """Endpoints without their secrets, newest first."""
    rows, has_more, next_cursor = endpoint_services.list_endpoints(
        request.dbsession, context.merchant_id, limit=query.limit, cursor=query.cursor
    )
    return WebhookEndpointPage(
        data=[WebhookEndpointOut.model_validate(e, from_attributes=True) for e in rows],
        has_more=has_more,
        next_cursor=next_cursor,
    )


@api_view(
    context=WebhookEndpointResource,
    method="GET",
    response=WebhookEndpointOut,
    permission=Permission.WEBHOOKS_MANAGE,
    tag="Webhook endpoints",
    summary="Get one webhook endpoint",
)
def get_endpoint_view(context, request):
    """The endpoint, without its secret."""
    return WebhookEndpointOut.model_validate(context.obj, from_attributes=True)


@api_view(
    context=WebhookEndpointResource,
    method="PATCH",
    body=WebhookEndpointUpdate,
    response=WebhookEndpointOut,
    permission=Permission.WEBHOOKS_MANAGE,
    tag="Webhook endpoints",
    summary="Change a webhook endpoint's URL, event types or enabled flag",
)
def update_endpoint_view(context, request, body: WebhookEndpointUpdate):
    """Fields left out stay as they are; a disabled endpoint receives nothing until enabled."""
    endpoint = endpoint_services.update_endpoint(
        request.dbsession,
        request.app_settings,
        context.obj,
        url=body.url,
        events=body.events,
        enabled=body.enabled,
        actor=request.identity.actor,
    )
    return WebhookEndpointOut.model_validate(endpoint, from_attributes=True)


@api_view(
    context=WebhookEndpointResource,
    method="DELETE",
    status=204,
    permission=Permission.WEBHOOKS_MANAGE,
    tag="Webhook endpoints",
    summary="Delete a webhook endpoint",
)
def delete_endpoint_view(context, request):
    """Deliveries still waiting for this endpoint are given up."""
    endpoint_services.delete_endpoint(request.dbsession, context.obj, actor=request.identity.actor)


@api_view(
    context=DeliveryCollection,
    method="GET",
    query=ListQuery,
    response=DeliveryPage,
    permission=Permission.WEBHOOKS_MANAGE,
    tag="Webhook endpoints",
    summary="List an endpoint's deliveries and their attempts",
)
def list_deliveries_view(context, request, query: ListQuery):
    """Newest first; each delivery lists every attempt (status code, latency, error, retry)."""
    rows, has_more, next_cursor = endpoint_services.list_deliveries(
        request.dbsession, context.obj, limit=query.limit, cursor=query.cursor
    )
    return DeliveryPage(
        data=[delivery_out(d, attempts) for d, attempts in rows],
        has_more=has_more,
        next_cursor=next_cursor,
    )


@api_view(
    context=Delivery,
    name="retry",
    method="POST",
    response=DeliveryOut,
    permission=Permission.WEBHOOKS_MANAGE,
    tag="Webhook endpoints",
    summary="Send a delivery again, now",
)
def retry_delivery_view(context, request):
    """One attempt right away, recorded like any other; answers with the delivery after it."""
    delivery = retry_delivery(
        request.dbsession,
        request.registry.keyring,
        request.app_settings,
        context.obj,
        RetryPolicy(),
    )
    return delivery_out(delivery, endpoint_services.delivery_attempts(request.dbsession, delivery))
