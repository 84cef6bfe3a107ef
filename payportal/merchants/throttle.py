"""Login throttling kept in PostgreSQL, so it holds across every web process.

After MAX_FAILURES failed sign-ins for one email within WINDOW, further attempts answer 429
until the oldest of those failures leaves the window, whatever the password. Attempts for one
email take turns on a transaction-scoped advisory lock, so concurrent guesses cannot slip
past the count.
"""

from __future__ import annotations

import datetime as dt
import math

import sqlalchemy as sa

from payportal.db import utcnow
from payportal.errors import RateLimited
from payportal.merchants.models import LoginFailure

MAX_FAILURES = 5
WINDOW = dt.timedelta(minutes=15)


def _lock_key(realm: str, email: str):
    return sa.func.hashtextextended(f"payportal.login:{realm}:{email}", 0)


def check_login_allowed(session, email: str, *, realm: str, now: dt.datetime | None = None):
    """Wait for this email's turn, then raise RateLimited if it has failed too often lately.

    The lock is held until the caller's transaction ends: the attempt's outcome (a recorded
    failure, or none) is what the next attempt for the same email counts.
    """
    now = now or utcnow()
    session.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(realm, email))))
    recent = (
        session.execute(
            sa.select(LoginFailure.failed_at)
            .where(
                LoginFailure.email == email,
                LoginFailure.realm == realm,
                LoginFailure.failed_at > now - WINDOW,
            )
            .order_by(LoginFailure.failed_at.desc())
            .limit(MAX_FAILURES)
        )
        .scalars()
        .all()
    )
    if len(recent) >= MAX_FAILURES:
        # the oldest of the last MAX_FAILURES failures leaving the window lets one more in
        opens_at = recent[-1] + WINDOW
        raise RateLimited(
            "too many failed sign-in attempts; try again later",
            retry_after=math.ceil((opens_at - now).total_seconds()),
            code="too_many_login_attempts",
        )


def record_login_failure(session, email: str, *, realm: str, now: dt.datetime | None = None):
    """Count one failed attempt, and forget this email's failures that left the window."""
    now = now or utcnow()
    session.execute(
        sa.delete(LoginFailure).where(
            LoginFailure.email == email,
            LoginFailure.realm == realm,
            LoginFailure.failed_at <= now - WINDOW,
        )
    )
    session.add(LoginFailure(email=email, realm=realm, failed_at=now))
    session.flush()
