"""A merchant's status over its life: pending until approved, then suspended — and what each
status lets its existing credentials do, from the very next request."""

from __future__ import annotations

import sqlalchemy as sa
from merchant_http import register

from payportal.events.models import OutboxEvent
from payportal.merchants import services
from payportal.merchants.models import AuditEntry, Merchant
from tests.factories import bearer

INITIALIZE = "/api/v1/payments/initialize"
PAYMENT = {"amount": 2500, "currency": "USD"}


def test_status_decides_money_movement_for_existing_credentials(testapp, dbsession):
    signed_up = register(testapp).json
    token = bearer(signed_up["tokens"]["access_token"])
    key = bearer(testapp.post_json("/api/v1/api-keys", {"name": "shop"}, headers=token).json["key"])
    merchant = dbsession.get(Merchant, signed_up["merchant"]["id"])

    for headers in (token, key):
        r = testapp.post_json(INITIALIZE, PAYMENT, headers=headers, status=403)
        assert r.json["error"]["code"] == "merchant_inactive"
        testapp.get("/api/v1/payments", headers=headers)  # reading is fine

    services.change_merchant_status(dbsession, merchant, "active", actor="operator:test")
    for headers in (token, key):
        testapp.post_json(INITIALIZE, PAYMENT, headers=headers, status=201)

    services.change_merchant_status(
        dbsession, merchant, "suspended", actor="operator:test", reason="chargebacks"
    )
    for headers in (token, key):
        r = testapp.post_json(INITIALIZE, PAYMENT, headers=headers, status=403)
        assert r.json["error"]["code"] == "merchant_inactive"
    assert testapp.get("/api/v1/auth/profile", headers=token).json["merchant"]["status"] == (
        "suspended"
    )

    trail = dbsession.execute(
        sa.select(AuditEntry.action, AuditEntry.from_value, AuditEntry.to_value, AuditEntry.actor)
        .where(AuditEntry.merchant_id == merchant.id, AuditEntry.action.like("merchant.%"))
        .order_by(AuditEntry.created_at)
    ).all()
    assert [tuple(row) for row in trail] == [
        ("merchant.registered", None, "pending", f"merchant:{merchant.id}"),
        ("merchant.status_changed", "pending", "active", "operator:test"),
        ("merchant.status_changed", "active", "suspended", "operator:test"),
    ]
    events = dbsession.scalars(
        sa.select(OutboxEvent)
        .where(
            OutboxEvent.merchant_id == merchant.id, OutboxEvent.type == "merchant.status_changed"
        )
        .order_by(OutboxEvent.created_at)
    ).all()
    assert [(e.data["previous_status"], e.data["status"]) for e in events] == [
        ("pending", "active"),
        ("active", "suspended"),
    ]
    assert services.change_merchant_status(dbsession, merchant, "suspended", actor="x") is None
