"""Traversal contexts of the events slice: /events, /webhook-endpoints and their deliveries.

Every lookup is scoped to the requesting merchant: another merchant's id is simply not found.
"""

from __future__ import annotations

import sqlalchemy as sa

from payportal.events.endpoints import get_endpoint
from payportal.events.models import WebhookDelivery
from payportal.events.services import get_event
from payportal.resources import MerchantCollection, MerchantObject, merchant_acl, parse_uuid


class EventCollection(MerchantCollection):
    path_template = "/events"

    def __getitem__(self, name: str):
        event_id = parse_uuid(name)
        if self.merchant_id is None:
            # nobody signed in: a context nobody may use, so the answer is 401 (not 404)
            return Event(self, name, None)
        event = get_event(self.dbsession, self.merchant_id, event_id)
        if event is None:
            raise KeyError(name)
        return Event(self, name, event)


class _Owned(MerchantObject):
    """A merchant's object, or a placeholder (obj None) that denies everyone."""

    @property
    def __acl__(self):
        return merchant_acl(self.obj.merchant_id if self.obj is not None else None)


class Event(_Owned):
    path_template = "/events/{id}"


class WebhookEndpointCollection(MerchantCollection):
    path_template = "/webhook-endpoints"

    def __getitem__(self, name: str):
        endpoint_id = parse_uuid(name)
        if self.merchant_id is None:
            return WebhookEndpointResource(self, name, None)
        endpoint = get_endpoint(self.dbsession, self.merchant_id, endpoint_id)
        if endpoint is None:
            raise KeyError(name)
        return WebhookEndpointResource(self, name, endpoint)


class WebhookEndpointResource(_Owned):
    path_template = "/webhook-endpoints/{id}"

    def __getitem__(self, name: str):
        if name == "deliveries":
            return DeliveryCollection(self, name, self.obj)
        raise KeyError(name)


class DeliveryCollection(_Owned):
    """The deliveries of one endpoint (obj is the endpoint)."""

    path_template = "/webhook-endpoints/{id}/deliveries"

    def __getitem__(self, name: str):
        delivery_id = parse_uuid(name)
        if self.obj is None:
            return Delivery(self, name, None)
        delivery = self.request.dbsession.execute(
            sa.select(WebhookDelivery).where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.endpoint_id == self.obj.id,
                WebhookDelivery.merchant_id == self.obj.merchant_id,
            )
        ).scalar_one_or_none()
        if delivery is None:
            raise KeyError(name)
        return Delivery(self, name, delivery)


class Delivery(_Owned):
    path_template = "/webhook-endpoints/{id}/deliveries/{delivery_id}"
