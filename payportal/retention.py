"""What the sweep deletes once nothing can need it any more, so no table grows forever.

- outbox events older than `event_retention_days`, once published to SQS and fanned out into
  webhook deliveries, none of them still pending and none being resent; their deliveries and
  attempts go with them (ON DELETE CASCADE). Off by default (0): the API promises every event
  of a merchant, so bounding the table is the operator's choice, after which the events API,
  the dashboard's event log and the delivery logs reach back that far, as Stripe's do.
- login failures that left the throttling window (payportal.merchants.throttle);
- dashboard sessions past their 12 h lifetime or revoked, a day after (the day keeps them for
  a look when a sign-out is questioned);
- refresh tokens and password reset tokens a day past their expiry: an expired one is refused
  on its signature or its expiry whatever its row says.

Each kind goes in batches of BATCH rows per committed transaction, so the sweep never holds many
locks or a long transaction; rows a request has locked are skipped for the next round. A pass
stops a kind after MAX_BATCHES batches, so a large backlog (retention switched on over years
of events) is worked off over several sweep rounds instead of holding up the relay's loop.
"""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa

from payportal.db import utcnow
from payportal.events.models import DeliveryStatus, OutboxEvent, WebhookDelivery
from payportal.merchants.models import (
    DashboardSession,
    LoginFailure,
    PasswordResetToken,
    RefreshToken,
)
from payportal.merchants.throttle import WINDOW

log = logging.getLogger(__name__)

BATCH = 1000
MAX_BATCHES = 10
GRACE = dt.timedelta(days=1)


def _purgeable(settings, now: dt.datetime) -> dict[str, tuple]:
    """name -> (the table's key column, which rows may go)."""
    kinds = {
        "login_failures": (LoginFailure.id, LoginFailure.failed_at <= now - WINDOW),
        "dashboard_sessions": (
            DashboardSession.digest,
            sa.or_(
                DashboardSession.expires_at <= now - GRACE,
                DashboardSession.revoked_at <= now - GRACE,
            ),
        ),
        "refresh_tokens": (RefreshToken.jti, RefreshToken.expires_at <= now - GRACE),
        "password_reset_tokens": (
            PasswordResetToken.id,
            PasswordResetToken.expires_at <= now - GRACE,
        ),
    }
    if settings.event_retention_days:
        pending = sa.exists().where(
            WebhookDelivery.event_id == OutboxEvent.id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        kinds["events"] = (
            OutboxEvent.id,
            sa.and_(
                OutboxEvent.created_at <= now - dt.timedelta(days=settings.event_retention_days),
                OutboxEvent.published_at.is_not(None),
                OutboxEvent.dispatched_at.is_not(None),
                ~pending,
            ),
        )
    return kinds


def purge_old_records(session_factory, settings, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete what no one can need any more (see the module docstring); how many of each, at
    most MAX_BATCHES * BATCH of a kind (backlog_left() says whether one reached it)."""
    now = now or utcnow()
    purged = {}
    for name, (key, expired) in _purgeable(settings, now).items():
        purged[name] = 0
        for _batch in range(MAX_BATCHES):
            batch = (
                sa.select(key).where(expired).limit(BATCH).with_for_update(skip_locked=True)
            ).scalar_subquery()
            with session_factory() as session, session.begin():
                deleted = session.execute(
                    sa.delete(key.class_)
                    .where(key.in_(batch))
                    .execution_options(synchronize_session=False)
                ).rowcount
            purged[name] += deleted
            if deleted < BATCH:
                break
    if any(purged.values()):
        log.info(
            "purged %s",
            ", ".join(
                f"{count} {name.replace('_', ' ')}" for name, count in purged.items() if count
            ),
        )
    return purged


def backlog_left(purged: dict[str, int]) -> bool:
    """Did a pass stop a kind at its cap, so there may be more to delete right away?"""
    return any(count >= MAX_BATCHES * BATCH for count in purged.values())
