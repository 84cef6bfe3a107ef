"""Fixtures the payments tests share: a signed-in merchant and a way to make its payments."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from payportal.events.models import OutboxEvent
from payportal.payments.models import Payment, PaymentTransition, Refund
from tests.factories import create_payment, merchant_headers

API = "/api/v1/payments"


@pytest.fixture
def merchant(dbsession, settings):
    """(merchant, Authorization headers) of an active merchant."""
    return merchant_headers(dbsession, settings)


@pytest.fixture
def other_merchant(dbsession, settings):
    return merchant_headers(dbsession, settings)


@pytest.fixture
def make_payment(dbsession, settings):
    def make(merchant, status="pending", **fields):
        return create_payment(dbsession, settings, merchant, status=status, **fields)

    return make


def initialize(testapp, headers, status=201, **body):
    body.setdefault("amount", 10_000)
    body.setdefault("currency", "USD")
    return testapp.post_json(f"{API}/initialize", body, headers=headers, status=status)


def count_rows(session, model, **where) -> int:
    stmt = sa.select(sa.func.count()).select_from(model)
    for column, value in where.items():
        stmt = stmt.where(getattr(model, column) == value)
    return session.scalar(stmt)


def money_rows(session, merchant_id) -> dict[str, int]:
    """What a write could have changed for this merchant: nothing, after a refused request."""
    payment_ids = sa.select(Payment.id).where(Payment.merchant_id == merchant_id)
    return {
        "payments": count_rows(session, Payment, merchant_id=merchant_id),
        "transitions": count_rows(session, PaymentTransition, merchant_id=merchant_id),
        "refunds": session.scalar(
            sa.select(sa.func.count()).where(Refund.payment_id.in_(payment_ids))
        ),
        "events": count_rows(session, OutboxEvent, merchant_id=merchant_id),
        "versions": session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Payment.version), 0)).where(
                Payment.merchant_id == merchant_id
            )
        ),
    }
