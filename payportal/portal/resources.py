"""The dashboard's resource tree: the slices' own collections (one tree, two faces) plus the
merchant-scoped pages that belong to no single slice."""

from __future__ import annotations

from payportal.resources import MerchantCollection


class MerchantHome(MerchantCollection):
    """/dashboard/home: the signed-in merchant's overview."""


class MerchantSettings(MerchantCollection):
    """/dashboard/settings: profile and password."""


class Developers(MerchantCollection):
    """/dashboard/developers: API keys, webhook endpoints, events, the API reference."""


# name under /dashboard -> the resource factory (a slice's collection or one of the above)
PORTAL_CHILDREN: tuple[tuple[str, str], ...] = (
    ("home", "payportal.portal.resources.MerchantHome"),
    ("settings", "payportal.portal.resources.MerchantSettings"),
    ("developers", "payportal.portal.resources.Developers"),
    ("payments", "payportal.payments.resources.PaymentCollection"),
    ("api-keys", "payportal.merchants.resources.ApiKeyCollection"),
    ("payment-methods", "payportal.payment_methods.resources.PaymentMethodCollection"),
    ("webhook-endpoints", "payportal.events.resources.WebhookEndpointCollection"),
    ("events", "payportal.events.resources.EventCollection"),
)
