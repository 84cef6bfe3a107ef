"""Webhook deliveries: events fanned out to subscribed endpoints, POSTed signed, retried with
backoff for up to three days, every attempt recorded."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import json
import logging
import random
import socket
import ssl
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from payportal.crypto import DecryptionError
from payportal.db import utcnow
from payportal.errors import NotFound
from payportal.events.endpoints import (
    ALL_EVENTS,
    AddressNotAllowed,
    endpoint_secret,
    resolve_addresses,
)
from payportal.events.models import (
    DeliveryStatus,
    OutboxEvent,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEndpoint,
)
from payportal.events.services import envelope
from payportal.metrics import DELIVERIES

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Payportal-Signature"
USER_AGENT = "payportal-webhooks/1"
TIMEOUT_SECONDS = 10
RESPONSE_READ_LIMIT = 64 * 1024
ERROR_CHARS = 1000
RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff from `first_seconds`, capped, given up `window` after the event."""

    first_seconds: float = 5.0
    cap_seconds: float = 3600.0
    window: dt.timedelta = dt.timedelta(days=3)

    def delay(self, attempts: int) -> float:
        base = self.first_seconds * 2 ** max(0, attempts - 1)
        # jitter only spreads retries out; nothing secret depends on it
        return min(self.cap_seconds, base * random.uniform(0.8, 1.2))  # noqa: S311


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    latency_ms: int
    error: str | None
    retryable: bool

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class DeliveryJob:
    """Everything one POST needs, read in the claiming transaction."""

    delivery_id: uuid.UUID
    url: str
    secret: str
    body: bytes
    event_id: uuid.UUID
    event_type: str
    correlation_id: str | None
    attempts: int
    created_at: dt.datetime


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def delivery_headers(job: DeliveryJob, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(job.secret, timestamp, job.body),
        "Payportal-Event-Id": str(job.event_id),
        "Payportal-Event-Type": job.event_type,
        "Payportal-Delivery-Id": str(job.delivery_id),
        "X-Correlation-ID": job.correlation_id or job.delivery_id.hex,
    }


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the addresses already checked, so a DNS answer cannot change under us."""

    def __init__(self, host: str, port: int, addresses: list[str], timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._addresses = addresses

    def _connect_pinned(self) -> socket.socket:
        last_error: OSError | None = None
        for address in self._addresses:
            try:
                return socket.create_connection((address, self.port), self.timeout)
            except OSError as exc:
                last_error = exc
        raise last_error or OSError("no address to connect to")

    def connect(self) -> None:
        self.sock = self._connect_pinned()


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    default_port = http.client.HTTPS_PORT

    def connect(self) -> None:
        context = ssl.create_default_context()
        self.sock = context.wrap_socket(self._connect_pinned(), server_hostname=self.host)


def post_webhook(url: str, body: bytes, headers: dict[str, str], *, allow_private: bool):
    """One POST, no redirects followed; the host is checked again right before connecting."""
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    port = parts.port or (443 if https else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.perf_counter()

    def result(status: int | None, error: str | None, retryable: bool) -> AttemptResult:
        latency = int((time.perf_counter() - started) * 1000)
        return AttemptResult(status, latency, error and error[:ERROR_CHARS], retryable)

    try:
        addresses = resolve_addresses(parts.hostname or "", port, allow_private=allow_private)
    except AddressNotAllowed as exc:
        return result(None, str(exc), retryable=False)
    except (socket.gaierror, UnicodeError) as exc:
        return result(None, f"host does not resolve: {exc}", retryable=True)
    connection_class = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
    connection = connection_class(parts.hostname, port, addresses, TIMEOUT_SECONDS)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(RESPONSE_READ_LIMIT)
        status = response.status
    except TimeoutError:
        return result(None, f"timed out after {TIMEOUT_SECONDS} s", retryable=True)
    except (OSError, http.client.HTTPException) as exc:
        return result(None, f"{type(exc).__name__}: {exc}", retryable=True)
    finally:
        connection.close()
    if 200 <= status < 300:
        return result(status, None, retryable=False)
    retryable = status in RETRYABLE_STATUSES or status >= 500
    error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    return result(status, error, retryable)


def _subscribed(endpoint: WebhookEndpoint, event: OutboxEvent) -> bool:
    return (ALL_EVENTS in endpoint.events or event.type in endpoint.events) and (
        endpoint.created_at <= event.created_at
    )


def fan_out_events(session, limit: int) -> int:
    """Turn undispatched events into one delivery per subscribed endpoint; returns events taken."""
    events = list(
        session.execute(
            sa.select(OutboxEvent)
            .where(OutboxEvent.dispatched_at.is_(None))
            .order_by(OutboxEvent.created_at, OutboxEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if not events:
        return 0
    endpoints = session.execute(
        sa.select(WebhookEndpoint).where(
            WebhookEndpoint.merchant_id.in_({event.merchant_id for event in events}),
            WebhookEndpoint.enabled.is_(True),
            WebhookEndpoint.deleted_at.is_(None),
        )
    ).scalars()
    by_merchant: dict[uuid.UUID, list[WebhookEndpoint]] = {}
    for endpoint in endpoints:
        by_merchant.setdefault(endpoint.merchant_id, []).append(endpoint)
    rows = [
        {
            "id": uuid.uuid4(),
            "endpoint_id": endpoint.id,
            "merchant_id": event.merchant_id,
            "event_id": event.id,
            "event_type": event.type,
        }
        for event in events
        for endpoint in by_merchant.get(event.merchant_id, [])
        if _subscribed(endpoint, event)
    ]
    if rows:
        session.execute(
            insert(WebhookDelivery.__table__)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
        )
    session.execute(
        sa.update(OutboxEvent.__table__)
        .where(OutboxEvent.__table__.c.id.in_([event.id for event in events]))
        .values(dispatched_at=sa.func.now())
    )
    return len(events)


def _job(keyring, delivery: WebhookDelivery, endpoint: WebhookEndpoint, event: OutboxEvent):
    return DeliveryJob(
        delivery_id=delivery.id,
        url=endpoint.url,
        secret=endpoint_secret(keyring, endpoint),
        body=json.dumps(envelope(event), separators=(",", ":")).encode(),
        event_id=event.id,
        event_type=event.type,
        correlation_id=event.correlation_id,
        attempts=delivery.attempts,
        created_at=delivery.created_at,
    )


def _delivery_rows(session, delivery_ids: list[uuid.UUID]):
    return session.execute(
        sa.select(WebhookDelivery, WebhookEndpoint, OutboxEvent)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.id.in_(delivery_ids))
        .order_by(WebhookDelivery.next_attempt_at)
    ).all()


def claim_due_deliveries(session, keyring, limit: int, lease_seconds: float) -> list[DeliveryJob]:
    """Lease due deliveries to this worker (their next_attempt_at moves past the lease), so
    no row lock is held while POSTing and a worker that dies only delays its jobs."""
    due = (
        sa.select(WebhookDelivery.id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= sa.func.now(),
            WebhookEndpoint.enabled.is_(True),
            WebhookEndpoint.deleted_at.is_(None),
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
    )
    ids = list(session.execute(due).scalars())
    if not ids:
        return []
    rows = _delivery_rows(session, ids)
    session.execute(
        sa.update(WebhookDelivery.__table__)
        .where(WebhookDelivery.__table__.c.id.in_(ids))
        .values(next_attempt_at=sa.func.now() + dt.timedelta(seconds=lease_seconds))
    )
    jobs = []
    for delivery, endpoint, event in rows:
        try:
            jobs.append(_job(keyring, delivery, endpoint, event))
        except DecryptionError:
            # the key that sealed this secret is not configured: wait for it, do not give up
            log.error("webhook endpoint %s: secret does not decrypt; will retry", endpoint.id)
    return jobs


# how an attempt ended, as the deliveries metric labels it
DELIVERY_OUTCOMES = {
    DeliveryStatus.SUCCEEDED: "delivered",
    DeliveryStatus.PENDING: "retrying",
    DeliveryStatus.FAILED: "failed",
}


def record_attempt(
    session, job: DeliveryJob, result: AttemptResult, policy: RetryPolicy
) -> DeliveryStatus:
    """Store the attempt and move the delivery on: delivered, retried later, or failed."""
    now = utcnow()
    attempts = job.attempts + 1
    next_retry: dt.datetime | None = None
    if result.delivered:
        status = DeliveryStatus.SUCCEEDED
    elif result.retryable:
        next_retry = now + dt.timedelta(seconds=policy.delay(attempts))
        status = DeliveryStatus.PENDING
        if next_retry > job.created_at + policy.window:
            status, next_retry = DeliveryStatus.FAILED, None
    else:
        status = DeliveryStatus.FAILED
    DELIVERIES.labels(DELIVERY_OUTCOMES[status]).inc()
    session.add(
        WebhookDeliveryAttempt(
            delivery_id=job.delivery_id,
            attempted_at=now,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error,
            next_retry_at=next_retry,
        )
    )
    session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id == job.delivery_id)
        .values(
            status=status,
            attempts=WebhookDelivery.attempts + 1,
            last_status_code=result.status_code,
            last_error=result.error,
            next_attempt_at=next_retry,
            delivered_at=now if result.delivered else WebhookDelivery.delivered_at,
            updated_at=now,
        )
    )
    session.flush()
    return status


def attempt_delivery(session, job: DeliveryJob, settings, policy: RetryPolicy) -> DeliveryStatus:
    result = post_webhook(
        job.url,
        job.body,
        delivery_headers(job, int(time.time())),
        allow_private=settings.webhook_allow_private,
    )
    return record_attempt(session, job, result, policy)


def retry_delivery(session, keyring, settings, delivery: WebhookDelivery, policy: RetryPolicy):
    """The merchant's 'send it again now': one attempt right away, whatever the status was.

    The event's row is share-locked first: retention (payportal.retention) skips an event
    someone holds, and one it has just purged (with its deliveries) is a 404 here, not a 500.
    """
    event_held = session.execute(
        sa.select(OutboxEvent.id)
        .where(OutboxEvent.id == delivery.event_id)
        .with_for_update(read=True)
    ).first()
    locked = session.execute(
        sa.select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if event_held is None or locked is None:
        raise NotFound("no such delivery")
    (_delivery, endpoint, event) = _delivery_rows(session, [locked.id])[0]
    job = _job(keyring, locked, endpoint, event)
    attempt_delivery(session, job, settings, policy)
    session.refresh(locked)
    return locked


class WebhookWorker:
    """One loop step: fan out new events, then POST the deliveries that are due, side by side
    (one slow merchant server does not hold up the others)."""

    def __init__(
        self,
        session_factory,
        settings,
        keyring,
        *,
        policy: RetryPolicy | None = None,
        fan_out_batch: int = 100,
        delivery_batch: int = 10,
    ):
        self.session_factory = session_factory
        self.settings = settings
        self.keyring = keyring
        self.policy = policy or RetryPolicy()
        self.fan_out_batch = fan_out_batch
        self.delivery_batch = delivery_batch
        # long enough for name resolution plus a POST that uses its whole timeout
        self.lease_seconds = 3 * TIMEOUT_SECONDS + 30

    def step(self) -> bool:
        with self.session_factory() as session, session.begin():
            fanned = fan_out_events(session, self.fan_out_batch)
        with self.session_factory() as session, session.begin():
            jobs = claim_due_deliveries(
                session, self.keyring, self.delivery_batch, self.lease_seconds
            )
        if jobs:
            with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
                list(pool.map(self._deliver, jobs))
        return fanned == self.fan_out_batch or len(jobs) == self.delivery_batch

    def _deliver(self, job: DeliveryJob) -> None:
        with self.session_factory() as session, session.begin():
            status = attempt_delivery(session, job, self.settings, self.policy)
        log.info("webhook delivery %s: %s", job.delivery_id, status)
