"""Appending events to the transactional outbox, and reading a merchant's events back."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import sqlalchemy as sa
import zope.sqlalchemy

from payportal.db import TRANSACTION_MANAGER_KEY, utcnow
from payportal.events.models import OutboxEvent
from payportal.pagination import keyset_page
from payportal.timestamps import iso_z

# session.info key: the in-process publisher (set on the web app's session factory when
# publishing is on); append_event hands it the event ids once the transaction has committed
PUBLISHER_KEY = "payportal.event_publisher"

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


# One outbox row as a plain INSERT (a row written once: no unit of work needed), with the
# %(e_...)s parameters of event_params(); the payment state machine runs it as a CTE of the
# transition's own statement.
INSERT_EVENT_SQL = (
    "INSERT INTO outbox_events (id, merchant_id, type, payment_id, data, correlation_id,"
    " created_at, next_attempt_at, attempts) VALUES (%(e_id)s, %(e_merchant_id)s, %(e_type)s,"
    " %(e_payment_id)s, %(e_data)s::jsonb, %(e_correlation_id)s, %(e_created_at)s,"
    " %(e_created_at)s, 0)"
)


def event_params(
    *,
    event_id: uuid.UUID,
    merchant_id: uuid.UUID,
    type: str,
    data_json: str,
    payment_id: uuid.UUID | None,
    correlation_id: str | None,
    created_at: dt.datetime,
) -> dict[str, Any]:
    """INSERT_EVENT_SQL's parameters; `data_json` is the event's data as JSON text."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    return {
        "e_id": event_id,
        "e_merchant_id": merchant_id,
        "e_type": type,
        "e_payment_id": payment_id,
        "e_data": data_json,
        "e_correlation_id": correlation_id,
        "e_created_at": created_at,
    }


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
    The row is written at once; the event returned is not in the session (nothing to flush).
    """
    now = utcnow()
    event = OutboxEvent(
        id=uuid.uuid4(),
        merchant_id=merchant_id,
        type=type,
        payment_id=payment_id,
        data=data,
        correlation_id=correlation_id,
        created_at=now,
        next_attempt_at=now,
        attempts=0,
    )
    params = event_params(
        event_id=event.id,
        merchant_id=merchant_id,
        type=type,
        data_json=json.dumps(data),
        payment_id=payment_id,
        correlation_id=correlation_id,
        created_at=now,
    )
    session.connection().exec_driver_sql(INSERT_EVENT_SQL, params)
    manager = session.info.get(TRANSACTION_MANAGER_KEY)
    if manager is not None:
        # a plain statement: tell pyramid_tm the request wrote, or it would roll it back
        zope.sqlalchemy.mark_changed(session, manager)
    publish_after_commit(session, merchant_id, event.id)
    return event


def publish_after_commit(session, merchant_id: uuid.UUID, event_id: uuid.UUID) -> None:
    """Queue the id for the in-process publisher, to be handed over only if the commit succeeds.

    The ids live on the transaction itself, so an aborted attempt (a pyramid_retry retry, a
    failed request) takes its ids with it, and one hook per transaction carries them all.
    Without a publisher or a transaction manager (console scripts), the relay sends the event.
    """
    publisher = session.info.get(PUBLISHER_KEY)
    manager = session.info.get(TRANSACTION_MANAGER_KEY)
    if publisher is None or manager is None:
        return
    transaction = manager.get()
    try:
        appended = transaction.data(publisher)
    except KeyError:
        appended = []
        transaction.set_data(publisher, appended)
        transaction.addAfterCommitHook(publisher.after_commit, args=(appended,))
    # callers may hand the merchant id as text; the publisher routes by its UUID
    appended.append((uuid.UUID(str(merchant_id)), event_id))


def envelope(event: OutboxEvent) -> dict[str, Any]:
    """The event as SQS, the API and merchant webhooks show it."""
    return {
        "id": str(event.id),
        "type": event.type,
        "created_at": iso_z(event.created_at),
        "merchant_id": str(event.merchant_id),
        "correlation_id": event.correlation_id,
        "data": event.data,
    }


def list_events(
    session,
    merchant_id: uuid.UUID,
    *,
    type: str | None = None,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[OutboxEvent], bool, str | None]:
    """One page of the merchant's events, newest first."""
    stmt = sa.select(OutboxEvent).where(OutboxEvent.merchant_id == merchant_id)
    if type is not None:
        stmt = stmt.where(OutboxEvent.type == type)
    return keyset_page(session, stmt, OutboxEvent, limit, cursor)


def get_event(session, merchant_id: uuid.UUID, event_id: uuid.UUID) -> OutboxEvent | None:
    return session.execute(
        sa.select(OutboxEvent).where(
            OutboxEvent.id == event_id, OutboxEvent.merchant_id == merchant_id
        )
    ).scalar_one_or_none()
