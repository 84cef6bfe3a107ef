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

    thirty_days = settings.model_copy(update={"event_retention_days": 30})
    purged = retention.purge_old_records(sessionmaker(bind=committed_db), thirty_days, now=NOW)

    assert purged["events"] == 1
    assert ids(committed_db, OutboxEvent.id) == {e.id for e in kept.values()}
    assert ids(committed_db, WebhookDelivery.event_id) == {kept["delivery pending"].id}


def test_by_default_every_event_is_kept_as_the_api_promises(committed_db, settings, merchant):
    assert settings.event_retention_days == 0
    with Session(committed_db) as session, session.begin():
        session.add(event(merchant, 400 * DAY))
    purged = retention.purge_old_records(sessionmaker(bind=committed_db), settings, now=NOW)
    assert "events" not in purged
    assert len(ids(committed_db, OutboxEvent.id)) == 1


def test_an_event_being_resent_is_left_for_a_later_pass(committed_db, settings, merchant):
    # events.delivery.retry_delivery share-locks the event while it resends one of its deliveries
    with Session(committed_db, expire_on_commit=False) as session, session.begin():
        old = event(merchant, 40 * DAY)
        session.add(old)
    thirty_days = settings.model_copy(update={"event_retention_days": 30})
    with Session(committed_db) as resending, resending.begin():
        resending.execute(
            sa.select(OutboxEvent.id).where(OutboxEvent.id == old.id).with_for_update(read=True)
        )
        purged = retention.purge_old_records(sessionmaker(bind=committed_db), thirty_days, now=NOW)
        assert purged["events"] == 0
    purged = retention.purge_old_records(sessionmaker(bind=committed_db), thirty_days, now=NOW)
    assert purged["events"] == 1


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
    assert not retention.backlog_left(purged)
    assert ids(committed_db, LoginFailure.id) == set()


def test_a_backlog_is_worked_off_a_capped_pass_per_sweep_round(committed_db, settings, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 5)
    monkeypatch.setattr(retention, "MAX_BATCHES", 2)
    monkeypatch.setattr(sweep, "_retention_due_at", 0.0)
    with Session(committed_db) as session, session.begin():
        session.add_all(
            LoginFailure(email=f"u{n}@example.com", failed_at=NOW - DAY) for n in range(23)
        )
    factory = sessionmaker(bind=committed_db)
    rounds = [sweep.run_sweep(factory, settings).purged.get("login_failures") for _ in range(4)]
    # 10 a round while the cap is hit, the rest, then nothing until the hour is up
    assert rounds == [10, 10, 3, None]
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
