"""Merchants' webhook endpoints: which URLs are allowed, the signing secret, and their CRUD."""

from __future__ import annotations

import ipaddress
import secrets
import socket
import uuid
from collections.abc import Sequence
from urllib.parse import urlsplit

import sqlalchemy as sa

from payportal.db import utcnow
from payportal.errors import ValidationFailed
from payportal.events.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEndpoint,
)
from payportal.events.services import EVENT_TYPES
from payportal.pagination import keyset_page

SECRET_PREFIX = "whsec_"  # noqa: S105 -- the visible prefix of generated secrets, not one
ALL_EVENTS = "*"
ALLOWED_SCHEMES = frozenset({"http", "https"})
# NAT64 (RFC 6052) embeds an IPv4 address that the gateway then connects to
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


class AddressNotAllowed(ValueError):
    """The host is, or resolves to, an address merchants' webhooks may not reach."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(address: str) -> bool:
    """Only globally routable unicast: no private, loopback, link-local, unspecified,
    multicast or reserved address, also when hidden inside an IPv6 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6:
        embedded = _embedded_ipv4(ip)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    return ip.is_global and not ip.is_multicast


def resolve_addresses(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Every address `host` resolves to; AddressNotAllowed if any of them is not public.

    Raises socket.gaierror when the name does not resolve.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not allow_private:
        refused = [a for a in addresses if not is_public_address(a)]
        if refused:
            raise AddressNotAllowed(f"{host} resolves to {refused[0]}, which is not public")
    return addresses


def _url_error(message: str) -> ValidationFailed:
    return ValidationFailed(
        f"url: {message}", code="invalid_url", details=[{"field": "url", "message": message}]
    )


def check_endpoint_url(url: str, *, allow_private: bool) -> str:
    """An http(s) URL whose host is public (unless private targets are allowed), or 422."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _url_error("not a valid URL") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise _url_error("must start with http:// or https://")
    if not parts.hostname:
        raise _url_error("has no host")
    if parts.username is not None or parts.password is not None:
        raise _url_error("must not carry a user name or password")
    if parts.fragment:
        raise _url_error("must not have a #fragment")
    if allow_private:
        return url
    default_port = 443 if parts.scheme.lower() == "https" else 80
    try:
        resolve_addresses(parts.hostname, port or default_port, allow_private=False)
    except AddressNotAllowed:
        raise _url_error(
            "points to a private, loopback, link-local or otherwise non-public address"
        ) from None
    except (socket.gaierror, UnicodeError):
        raise _url_error(f"host {parts.hostname!r} does not resolve") from None
    return url


def normalize_events(events: Sequence[str]) -> list[str]:
    """Known event types (each once, in the given order), or exactly ['*']."""
    chosen = list(dict.fromkeys(events))
    if not chosen:
        raise _events_error("choose at least one event type, or '*'")
    if ALL_EVENTS in chosen:
        if len(chosen) > 1:
            raise _events_error("'*' already means every event type; send it alone")
        return chosen
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    if unknown:
        raise _events_error(f"unknown event type {unknown[0]!r}")
    return chosen


def _events_error(message: str) -> ValidationFailed:
    return ValidationFailed(
        f"events: {message}",
        code="invalid_field",
        details=[{"field": "events", "message": message}],
    )


def secret_context(endpoint_id: uuid.UUID) -> str:
    """AES-GCM associated data: a sealed secret only opens on the row it was made for."""
    return f"webhook_endpoints.sealed_secret:{endpoint_id}"


def endpoint_secret(keyring, endpoint: WebhookEndpoint) -> str:
    return keyring.decrypt(endpoint.sealed_secret, secret_context(endpoint.id))


def create_endpoint(
    session,
    keyring,
    settings,
    *,
    merchant_id: uuid.UUID,
    url: str,
    events: Sequence[str],
    description: str | None = None,
    actor: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    """A new enabled endpoint and its signing secret (returned this once, stored sealed)."""
    url = check_endpoint_url(url, allow_private=settings.webhook_allow_private)
    endpoint_id = uuid.uuid4()
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        merchant_id=merchant_id,
        url=url,
        description=description,
        events=normalize_events(events),
        enabled=True,
        sealed_secret=keyring.encrypt(secret, secret_context(endpoint_id)),
        created_by=actor,
        updated_by=actor,
    )
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def update_endpoint(
    session,
    settings,
    endpoint: WebhookEndpoint,
    *,
    url: str | None = None,
    events: Sequence[str] | None = None,
    enabled: bool | None = None,
    actor: str | None = None,
) -> WebhookEndpoint:
    """Change what was given; a new URL passes the same checks as at creation."""
    if url is not None:
        endpoint.url = check_endpoint_url(url, allow_private=settings.webhook_allow_private)
    if events is not None:
        endpoint.events = normalize_events(events)
    if enabled is not None:
        endpoint.enabled = enabled
    endpoint.updated_by = actor
    endpoint.updated_at = utcnow()
    session.flush()
    return endpoint


def delete_endpoint(session, endpoint: WebhookEndpoint, *, actor: str | None = None) -> None:
    """Soft-delete the endpoint; what was still waiting to be delivered to it is given up."""
    now = utcnow()
    endpoint.deleted_at = now
    endpoint.enabled = False
    endpoint.updated_by = actor
    endpoint.updated_at = now
    session.execute(
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .values(
            status=DeliveryStatus.FAILED,
            next_attempt_at=None,
            last_error="endpoint deleted",
            updated_at=now,
        )
    )
    session.flush()


def get_endpoint(session, merchant_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
    return session.execute(
        sa.select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.merchant_id == merchant_id,
            WebhookEndpoint.deleted_at.is_(None),
        )
    ).scalar_one_or_none()


def list_endpoints(
    session, merchant_id: uuid.UUID, *, limit: int, cursor: str | None = None
) -> tuple[list[WebhookEndpoint], bool, str | None]:
    stmt = sa.select(WebhookEndpoint).where(
        WebhookEndpoint.merchant_id == merchant_id, WebhookEndpoint.deleted_at.is_(None)
    )
    return keyset_page(session, stmt, WebhookEndpoint, limit, cursor)


def list_deliveries(
    session, endpoint: WebhookEndpoint, *, limit: int, cursor: str | None = None
) -> tuple[list[tuple[WebhookDelivery, list[WebhookDeliveryAttempt]]], bool, str | None]:
    """One page of the endpoint's deliveries (newest first), each with its attempts."""
    stmt = sa.select(WebhookDelivery).where(
        WebhookDelivery.endpoint_id == endpoint.id,
        WebhookDelivery.merchant_id == endpoint.merchant_id,
    )
    deliveries, has_more, next_cursor = keyset_page(session, stmt, WebhookDelivery, limit, cursor)
    return _with_attempts(session, deliveries), has_more, next_cursor


def _with_attempts(session, deliveries: list[WebhookDelivery]):
    attempts: dict[uuid.UUID, list[WebhookDeliveryAttempt]] = {d.id: [] for d in deliveries}
    if deliveries:
        rows = session.execute(
            sa.select(WebhookDeliveryAttempt)
            .where(WebhookDeliveryAttempt.delivery_id.in_(list(attempts)))
            .order_by(WebhookDeliveryAttempt.attempted_at, WebhookDeliveryAttempt.id)
        ).scalars()
        for attempt in rows:
            attempts[attempt.delivery_id].append(attempt)
    return [(d, attempts[d.id]) for d in deliveries]


def delivery_attempts(session, delivery: WebhookDelivery) -> list[WebhookDeliveryAttempt]:
    return _with_attempts(session, [delivery])[0][1]
