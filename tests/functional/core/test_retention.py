"""Retention (payportal.retention, run by the sweep): what nothing can need any more goes, in
batches; everything else stays — recent or undelivered events above all."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from payportal import retention
from payportal.events.models import DeliveryStatus, OutboxEvent, WebhookDelivery, WebhookEndpoint
from payportal.merchants.models import (
    DashboardSession,
    LoginFailure,
    PasswordResetToken,
    RefreshToken,
)
from payportal.payments import sweep
from tests.factories import create_merchant

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


def event(merchant, age: dt.timedelta, *, published=True, dispatched=True) -> OutboxEvent:
    created = NOW - age
    return OutboxEvent(
        id=uuid.uuid4(),
        merchant_id=merchant.id,
        type="payment.completed",
        data={"reference": "pay_x"},
        created_at=created,
        published_at=created if published else None,
        dispatched_at=created if dispatched else None,
    )


@pytest.fixture
def merchant(committed_db, settings):
    with Session(committed_db, expire_on_commit=False) as session, session.begin():
        return create_merchant(session, settings)


def ids(engine, column) -> set:
    with Session(engine) as session:
        return set(session.scalars(sa.select(column)))


def test_events_past_retention_go_with_their_deliveries_and_the_rest_stay(
    committed_db, settings, merchant
):
    with Session(committed_db, expire_on_commit=False) as session, session.begin():
        old = event(merchant, 31 * DAY)
        kept = {
            "recent": event(merchant, 29 * DAY),
            "unpublished": event(merchant, 40 * DAY, published=False),
            "undispatched": event(merchant, 40 * DAY, dispatched=False),
            "delivery pending": event(merchant, 40 * DAY),
        }
        session.add_all([old, *kept.values()])
        endpoint = WebhookEndpoint(
            merchant_id=merchant.id,
            url="https://hooks.example.com/payportal",
            events=["*"],
            sealed_secret="sealed",
        )
        session.add(endpoint)
        session.flush()
        for ev, status in (
            (old, DeliveryStatus.SUCCEEDED),
            (kept["delivery pending"], DeliveryStatus.PENDING),
        ):
            session.add(
                WebhookDelivery(
                    endpoint_id=endpoint.id,
                    merchant_id=merchant.id,
                    event_id=ev.id,
                    event_type=ev.type,
                    status=status,
                )
            )

    purged = retention.purge_old_records(sessionmaker(bind=committed_db), settings, now=NOW)

    assert purged["events"] == 1
    assert ids(committed_db, OutboxEvent.id) == {e.id for e in kept.values()}
    assert ids(committed_db, WebhookDelivery.event_id) == {kept["delivery pending"].id}


def test_retention_zero_keeps_every_event(committed_db, settings, merchant):
    with Session(committed_db) as session, session.begin():
        session.add(event(merchant, 400 * DAY))
    keep_forever = settings.model_copy(update={"event_retention_days": 0})
    purged = retention.purge_old_records(sessionmaker(bind=committed_db), keep_forever, now=NOW)
    assert "events" not in purged
    assert len(ids(committed_db, OutboxEvent.id)) == 1


def test_expired_sign_in_records_go_and_live_ones_stay(committed_db, settings, merchant):
    fresh_session = "b" * 64
    with Session(committed_db) as session, session.begin():
        session.add_all(
            [
                LoginFailure(email="old@example.com", failed_at=NOW - dt.timedelta(minutes=16)),
                LoginFailure(email="new@example.com", failed_at=NOW - dt.timedelta(minutes=14)),
                DashboardSession(
                    digest="a" * 64,
                    merchant_id=merchant.id,
                    csrf_token="x",
                    expires_at=NOW - 2 * DAY,
                ),
                DashboardSession(
                    digest="c" * 64,
                    merchant_id=merchant.id,
                    csrf_token="x",
                    expires_at=NOW + DAY,
                    revoked_at=NOW - 2 * DAY,
                ),
                DashboardSession(
                    digest=fresh_session,
                    merchant_id=merchant.id,
                    csrf_token="x",
                    expires_at=NOW + dt.timedelta(hours=10),
                ),
                RefreshToken(
                    jti=uuid.uuid4(),
                    merchant_id=merchant.id,
                    family_id=uuid.uuid4(),
                    expires_at=NOW - 2 * DAY,
                ),
                PasswordResetToken(
                    merchant_id=merchant.id, digest="d" * 64, expires_at=NOW - 2 * DAY
                ),
                PasswordResetToken(
                    merchant_id=merchant.id, digest="e" * 64, expires_at=NOW + dt.timedelta(hours=1)
                ),
            ]
        )

    purged = retention.purge_old_records(sessionmaker(bind=committed_db), settings, now=NOW)

    assert purged == {
        "login_failures": 1,
        "dashboard_sessions": 2,
        "refresh_tokens": 1,
        "password_reset_tokens": 1,
        "events": 0,
    }
    assert ids(committed_db, LoginFailure.email) == {"new@example.com"}
    assert ids(committed_db, DashboardSession.digest) == {fresh_session}
    assert ids(committed_db, RefreshToken.jti) == set()
    assert ids(committed_db, PasswordResetToken.digest) == {"e" * 64}


def test_more_than_a_batch_goes_in_several_transactions(committed_db, settings, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 10)
    with Session(committed_db) as session, session.begin():
        session.add_all(
            LoginFailure(email=f"u{n}@example.com", failed_at=NOW - DAY) for n in range(25)
        )
    purged = retention.purge_old_records(sessionmaker(bind=committed_db), settings, now=NOW)
    assert purged["login_failures"] == 25
    assert ids(committed_db, LoginFailure.id) == set()


def test_the_sweep_runs_retention_at_most_once_an_hour(committed_db, settings, monkeypatch):
    monkeypatch.setattr(sweep, "_retention_due_at", 0.0)
    factory = sessionmaker(bind=committed_db)
    with Session(committed_db) as session, session.begin():
        session.add(LoginFailure(email="old@example.com", failed_at=NOW - DAY))
    first = sweep.run_sweep(factory, settings)
    assert first.purged["login_failures"] == 1
    with Session(committed_db) as session, session.begin():
        session.add(LoginFailure(email="old@example.com", failed_at=NOW - DAY))
    second = sweep.run_sweep(factory, settings)
    assert second.purged == {}
    assert len(ids(committed_db, LoginFailure.id)) == 1
