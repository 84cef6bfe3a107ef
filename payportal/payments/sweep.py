"""The expiry sweep: pending payments past expires_at become expired; old idempotency keys go.

Safe in any number of processes at once: each batch locks its rows with FOR UPDATE SKIP
LOCKED, so two sweeps never take the same payment, and a payment a request holds is left for
the next round instead of waited for.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import sqlalchemy as sa

from payportal.db import utcnow
from payportal.idempotency import purge_expired
from payportal.payments.models import Payment, PaymentStatus
from payportal.payments.state import apply_transition
from payportal.retention import backlog_left, purge_old_records

log = logging.getLogger(__name__)

SOURCE = "system"
ACTOR = "system:expiry-sweep"


def expire_batch(session, settings, batch_size: int) -> int:
    """Expire up to `batch_size` due payments in the session's transaction; returns how many."""
    due = session.scalars(
        sa.select(Payment)
        .where(Payment.status == PaymentStatus.PENDING, Payment.expires_at <= utcnow())
        .order_by(Payment.expires_at)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    for payment in due:
        apply_transition(
            session,
            payment,
            PaymentStatus.EXPIRED,
            source=SOURCE,
            settings=settings,
            actor=ACTOR,
            reason="not paid before expires_at",
        )
    return len(due)


def expire_due_payments(session_factory, settings, batch_size: int = 500) -> int:
    """Expire every due pending payment, one committed batch at a time; returns how many."""
    total = 0
    while True:
        with session_factory() as session, session.begin():
            expired = expire_batch(session, settings, batch_size)
        total += expired
        if expired < batch_size:
            break
    if total:
        log.info("expired %d pending payments", total)
    return total


def purge_idempotency_keys(session_factory) -> int:
    """Delete idempotency keys past their 24 h retention; returns how many."""
    with session_factory() as session, session.begin():
        purged = purge_expired(session)
    if purged:
        log.info("purged %d idempotency keys older than 24 h", purged)
    return purged


@dataclass(frozen=True)
class SweepResult:
    expired_payments: int
    purged_keys: int
    # what retention purged this round (payportal.retention); empty when it was not due
    purged: dict[str, int] = field(default_factory=dict)


# retention scans whole tables when there is nothing to delete: once an hour per process is
# plenty for rows kept for days
RETENTION_EVERY = 3600.0
_retention_due_at = 0.0


def run_sweep(session_factory, settings, batch_size: int = 500) -> SweepResult:
    """One full round: expire due payments, purge old idempotency keys, and, once an hour (each
    round while a backlog lasts), what retention lets go."""
    global _retention_due_at
    expired = expire_due_payments(session_factory, settings, batch_size)
    keys = purge_idempotency_keys(session_factory)
    purged = {}
    if time.monotonic() >= _retention_due_at:
        purged = purge_old_records(session_factory, settings)
        # a backlog is worked off a capped pass per round; otherwise again in an hour
        _retention_due_at = 0.0 if backlog_left(purged) else time.monotonic() + RETENTION_EVERY
    return SweepResult(expired_payments=expired, purged_keys=keys, purged=purged)
