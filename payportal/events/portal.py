"""The dashboard's webhook and event pages: endpoints (create with the secret shown once, edit,
disable, delete), each endpoint's delivery log with "resend", and the events log. Every change
goes through the events slice's services."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config, view_defaults

from payportal.errors import PayportalError
from payportal.events import endpoints
from payportal.events.delivery import RetryPolicy, retry_delivery
from payportal.events.resources import (
    Delivery,
    Event,
    EventCollection,
    WebhookEndpointCollection,
    WebhookEndpointResource,
)
from payportal.events.schemas import WebhookEndpointCreate, WebhookEndpointUpdate
from payportal.events.services import EVENT_TYPES, envelope, list_events
from payportal.portal.deliveries import deliveries_by_event
from payportal.portal.forms import FormInvalid, errors_from_domain, form_values, validate
from payportal.portal.templating import url
from payportal.security import Permission

ALL_EVENTS = "*"
ENDPOINTS_PAGE = 100
DELIVERIES_PAGE = 25
EVENTS_PAGE = 30


def chosen_events(request) -> list[str]:
    """The checked event types; 'every event' wins over single types."""
    chosen = [e for e in request.POST.getall("events") if e]
    return [ALL_EVENTS] if ALL_EVENTS in chosen else chosen


@view_defaults(route_name="portal", context=WebhookEndpointCollection)
class EndpointListPages:
    def __init__(self, context, request):
        self.context = context
        self.request = request

    @view_config(
        name="", request_method="GET", permission=Permission.WEBHOOKS_MANAGE,
        renderer="events/endpoints.jinja2",
    )  # fmt: skip
    def table(self, created=None, values=None, errors=None):
        rows, _more, _cursor = endpoints.list_endpoints(
            self.request.dbsession, self.context.merchant_id, limit=ENDPOINTS_PAGE
        )
        return {
            "section": "developers",
            "tab": "webhook-endpoints",
            "endpoints": rows,
            "created": created,
            "values": values or {"events": [ALL_EVENTS]},
            "errors": errors or {},
            "event_types": EVENT_TYPES,
        }

    @view_config(
        name="", request_method="POST", permission=Permission.WEBHOOKS_MANAGE,
        renderer="events/endpoints.jinja2",
    )  # fmt: skip
    def create(self):
        values = form_values(self.request, "url", "description")
        values["events"] = chosen_events(self.request)
        data = {"url": values["url"], "events": values["events"]}
        if values["description"]:
            data["description"] = values["description"]
        try:
            body = validate(WebhookEndpointCreate, data)
            endpoint, secret = endpoints.create_endpoint(
                self.request.dbsession,
                self.request.registry.keyring,
                self.request.app_settings,
                merchant_id=self.context.merchant_id,
                url=body.url,
                events=body.events,
                description=body.description,
                actor=self.request.identity.actor,
            )
        except FormInvalid as exc:
            self.request.response.status_int = 422
            return self.table(values=values, errors=exc.errors)
        except PayportalError as exc:
            self.request.response.status_int = exc.status
            return self.table(values=values, errors=errors_from_domain(exc))
        # rendered, not redirected: the secret exists only in this response
        self.request.response.status_int = 201
        return self.table(created={"endpoint": endpoint, "secret": secret})


@view_defaults(route_name="portal", context=WebhookEndpointResource)
class EndpointPages:
    def __init__(self, context, request):
        self.context = context
        self.request = request
        self.endpoint = context.obj

    @view_config(
        name="", request_method="GET", permission=Permission.WEBHOOKS_MANAGE,
        renderer="events/endpoint.jinja2",
    )  # fmt: skip
    def show(self, values=None, errors=None):
        cursor = self.request.GET.get("cursor") or None
        try:
            deliveries, has_more, next_cursor = endpoints.list_deliveries(
                self.request.dbsession, self.endpoint, limit=DELIVERIES_PAGE, cursor=cursor
            )
        except PayportalError:
            deliveries, has_more, next_cursor = [], False, None
        base = url(self.request, "portal", "webhook-endpoints", self.endpoint.id)
        return {
            "section": "developers",
            "tab": "webhook-endpoints",
            "endpoint": self.endpoint,
            "deliveries": deliveries,
            "next_url": f"{base}?{urlencode({'cursor': next_cursor})}" if has_more else "",
            "first_url": base if cursor else "",
            "values": values or {"url": self.endpoint.url, "events": list(self.endpoint.events)},
            "errors": errors or {},
            "event_types": EVENT_TYPES,
        }

    @view_config(
        name="", request_method="POST", permission=Permission.WEBHOOKS_MANAGE,
        renderer="events/endpoint.jinja2",
    )  # fmt: skip
    def save(self):
        values = form_values(self.request, "url")
        values["events"] = chosen_events(self.request)
        try:
            body = validate(
                WebhookEndpointUpdate, {"url": values["url"], "events": values["events"]}
            )
            endpoints.update_endpoint(
                self.request.dbsession,
                self.request.app_settings,
                self.endpoint,
                url=body.url,
                events=body.events,
                actor=self.request.identity.actor,
            )
        except FormInvalid as exc:
            self.request.response.status_int = 422
            return self.show(values, exc.errors)
        except PayportalError as exc:
            self.request.tm.doom()
            self.request.response.status_int = exc.status
            self.request.dbsession.refresh(self.endpoint)
            return self.show(values, errors_from_domain(exc))
        return self._back("endpoint_saved")

    @view_config(name="enabled", request_method="POST", permission=Permission.WEBHOOKS_MANAGE)
    def set_enabled(self):
        endpoints.update_endpoint(
            self.request.dbsession,
            self.request.app_settings,
            self.endpoint,
            enabled=self.request.POST.get("enabled") == "true",
            actor=self.request.identity.actor,
        )
        return self._back("endpoint_saved")

    @view_config(
        name="delete", request_method="GET", permission=Permission.WEBHOOKS_MANAGE,
        renderer="events/endpoint_delete.jinja2",
    )  # fmt: skip
    def confirm_delete(self):
        return {"section": "developers", "tab": "webhook-endpoints", "endpoint": self.endpoint}

    @view_config(name="delete", request_method="POST", permission=Permission.WEBHOOKS_MANAGE)
    def delete(self):
        endpoints.delete_endpoint(
            self.request.dbsession, self.endpoint, actor=self.request.identity.actor
        )
        return HTTPSeeOther(
            location=url(self.request, "portal", "webhook-endpoints", notice="endpoint_deleted")
        )

    def _back(self, notice: str):
        return HTTPSeeOther(
            location=url(
                self.request, "portal", "webhook-endpoints", self.endpoint.id, notice=notice
            )
        )


@view_config(
    route_name="portal", context=Delivery, name="retry", request_method="POST",
    permission=Permission.WEBHOOKS_MANAGE,
)  # fmt: skip
def resend_delivery(context, request):
    """One attempt right away (recorded in the log like any other), then back to the log."""
    delivery = context.obj
    retry_delivery(
        request.dbsession, request.registry.keyring, request.app_settings, delivery, RetryPolicy()
    )
    return HTTPSeeOther(
        location=url(
            request, "portal", "webhook-endpoints", delivery.endpoint_id, notice="delivery_resent"
        )
    )


@view_config(
    route_name="portal", context=EventCollection, name="", request_method="GET",
    permission=Permission.EVENTS_READ, renderer="events/events.jinja2",
)  # fmt: skip
def events_log(context, request):
    chosen = request.GET.get("type", "")
    event_type = chosen if chosen in EVENT_TYPES else None
    cursor = request.GET.get("cursor") or None
    try:
        events, has_more, next_cursor = list_events(
            request.dbsession,
            context.merchant_id,
            type=event_type,
            limit=EVENTS_PAGE,
            cursor=cursor,
        )
    except PayportalError:
        events, has_more, next_cursor = [], False, None
    base = url(request, "portal", "events")
    kept = {"type": event_type} if event_type else {}
    return {
        "section": "developers",
        "tab": "events",
        "events": events,
        "event_type": event_type or "",
        "event_types": EVENT_TYPES,
        "next_url": f"{base}?{urlencode({**kept, 'cursor': next_cursor})}" if has_more else "",
        "first_url": url(request, "portal", "events", **kept) if cursor else "",
    }


@view_config(
    route_name="portal", context=Event, name="", request_method="GET",
    permission=Permission.EVENTS_READ, renderer="events/event.jinja2",
)  # fmt: skip
def event_detail(context, request):
    event = context.obj
    return {
        "section": "developers",
        "tab": "events",
        "event": event,
        "body": json.dumps(envelope(event), indent=2, sort_keys=True),
        "deliveries": deliveries_by_event(request.dbsession, event.merchant_id, [event.id]).get(
            event.id, []
        ),
    }
