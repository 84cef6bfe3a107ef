"""What the gateway webhook tests share: events signed the way each gateway documents it
(computed here with hmac directly, never with the code under test), and ways to read back
what a delivery did to a payment."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
import webtest

from payportal.db import TEST_CONNECTION_KEY
from payportal.events.models import OutboxEvent
from payportal.gateways.models import GatewayWebhook
from payportal.payments.models import Payment, PaymentTransition
from tests.conftest import TEST_SETTINGS
from tests.factories import create_payment_row, merchant_headers

WEBHOOKS = "/api/v1/webhooks"
GENERIC_SECRET = TEST_SETTINGS["payportal.webhook_secret"]
STRIPE_SECRET = TEST_SETTINGS["payportal.stripe_webhook_secret"]
PAYSTACK_SECRET = TEST_SETTINGS["payportal.paystack_secret_key"]
FLUTTERWAVE_HASH = TEST_SETTINGS["payportal.flutterwave_secret_hash"]


def encode(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


# -- signing, as each gateway's documentation describes it ----------------------------------


def sign_generic(raw: bytes, secret: str = GENERIC_SECRET, timestamp: int | None = None) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return {"X-Timestamp": str(timestamp), "X-Signature": f"sha256={mac}"}


def sign_stripe(raw: bytes, secret: str = STRIPE_SECRET, timestamp: int | None = None) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={mac}"}


def sign_paystack(raw: bytes, secret: str = PAYSTACK_SECRET, timestamp: int | None = None) -> dict:
    return {"x-paystack-signature": hmac.new(secret.encode(), raw, hashlib.sha512).hexdigest()}


def sign_flutterwave(
    raw: bytes, secret: str = FLUTTERWAVE_HASH, timestamp: int | None = None
) -> dict:
    return {"verif-hash": secret}


def sign_flutterwave_v4(raw: bytes, secret: str = FLUTTERWAVE_HASH) -> dict:
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).digest()
    return {"flutterwave-signature": base64.b64encode(digest).decode()}


# -- events, shaped as each gateway sends them ----------------------------------------------


def generic_event(reference: str, status: str, *, event_id: str | None = None, **fields) -> dict:
    return {
        "event_id": event_id or f"evt_{uuid.uuid4().hex}",
        "event": f"payment.{status}",
        "reference": reference,
        "status": status,
        **fields,
    }


STRIPE_TYPES = {
    "completed": "payment_intent.succeeded",
    "failed": "payment_intent.payment_failed",
    "processing": "payment_intent.processing",
    "cancelled": "payment_intent.canceled",
    "refunded": "charge.refunded",
    "disputed": "charge.dispute.created",
}


def stripe_event(
    reference: str,
    status: str,
    *,
    amount: int = 10_000,
    currency: str = "usd",
    event_id: str | None = None,
    refunded: int | None = None,
    **object_fields,
) -> dict:
    event_type = STRIPE_TYPES[status]
    if event_type.startswith("charge.refunded"):
        obj: dict[str, Any] = {
            "id": "ch_3Test",
            "object": "charge",
            "amount": amount,
            "amount_refunded": amount if refunded is None else refunded,
            "currency": currency,
            "payment_intent": "pi_3Test",
            "refunds": {"object": "list", "data": [{"id": f"re_{uuid.uuid4().hex[:12]}"}]},
        }
    elif event_type == "charge.dispute.created":
        obj = {"id": "dp_1Test", "object": "dispute", "amount": amount, "currency": currency}
        obj["reason"] = "fraudulent"
    else:
        obj = {"id": "pi_3Test", "object": "payment_intent", "amount": amount}
        obj["currency"] = currency
    obj["metadata"] = {"reference": reference}
    obj.update(object_fields)
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "type": event_type,
        "data": {"object": obj},
    }


def paystack_event(
    reference: str,
    status: str,
    *,
    amount: int = 10_000,
    currency: str = "NGN",
    object_id: int | None = None,
    **data_fields,
) -> dict:
    object_id = object_id or uuid.uuid4().int % 10**10
    if status == "refunded":
        data: dict[str, Any] = {
            "id": object_id,
            "status": "processed",
            "transaction_reference": reference,
            "refund_reference": f"TRF_{object_id}",
            "amount": amount,
            "currency": currency,
        }
        return {"event": "refund.processed", "data": {**data, **data_fields}}
    event = {"completed": "charge.success", "failed": "charge.failed"}[status]
    data = {
        "id": object_id,
        "domain": "test",
        "status": "success" if status == "completed" else "failed",
        "reference": reference,
        "amount": amount,
        "currency": currency,
        "gateway_response": "Successful" if status == "completed" else "Declined",
    }
    return {"event": event, "data": {**data, **data_fields}}


def flutterwave_event(
    reference: str,
    status: str,
    *,
    amount: Any = 100,
    currency: str = "NGN",
    object_id: int | None = None,
    **data_fields,
) -> dict:
    data = {
        "id": object_id or uuid.uuid4().int % 10**9,
        "tx_ref": reference,
        "flw_ref": "FLW-MOCK-1",
        "amount": amount,
        "currency": currency,
        "charged_amount": amount,
        "status": {"completed": "successful", "failed": "failed"}[status],
        "processor_response": "Approved" if status == "completed" else "Insufficient funds",
    }
    return {"event": "charge.completed", "data": {**data, **data_fields}}


@dataclass(frozen=True)
class Gateway:
    """One gateway as the tests drive it; payments it settles are in `currency`."""

    name: str
    endpoint: str
    currency: str
    sign: Any
    event: Any

    @property
    def url(self) -> str:
        return f"{WEBHOOKS}/{self.endpoint}"

    def completed(self, payment: Payment, **fields) -> dict:
        if self.name == "flutterwave":
            fields.setdefault("amount", payment.amount // 100)
        elif self.name in ("stripe", "paystack"):
            fields.setdefault("amount", payment.amount)
        if self.name == "generic":
            fields.setdefault("data", {"amount": payment.amount, "currency": payment.currency})
        return self.event(payment.reference, "completed", **fields)


GATEWAYS = {
    "generic": Gateway("generic", "payment", "USD", sign_generic, generic_event),
    "stripe": Gateway("stripe", "stripe", "USD", sign_stripe, stripe_event),
    "paystack": Gateway("paystack", "paystack", "NGN", sign_paystack, paystack_event),
    "flutterwave": Gateway(
        "flutterwave", "flutterwave", "NGN", sign_flutterwave, flutterwave_event
    ),
}


def post_event(app, gateway: Gateway, body: dict | bytes, *, status: int = 200, headers=None):
    raw = body if isinstance(body, bytes) else encode(body)
    sent = gateway.sign(raw) if headers is None else headers
    return app.post(gateway.url, raw, headers=sent, content_type="application/json", status=status)


# -- reading back what happened ------------------------------------------------------------


def reload(session, payment: Payment) -> Payment:
    return session.execute(
        sa.select(Payment).where(Payment.id == payment.id).execution_options(populate_existing=True)
    ).scalar_one()


def transitions(session, payment: Payment) -> list[tuple[str | None, str, str]]:
    rows = session.execute(
        sa.select(
            PaymentTransition.from_status, PaymentTransition.to_status, PaymentTransition.source
        )
        .where(PaymentTransition.payment_id == payment.id)
        .order_by(PaymentTransition.created_at, PaymentTransition.id)
    ).all()
    return [(f and str(f), str(t), s) for f, t, s in rows]


def event_types(session, payment: Payment) -> list[str]:
    return list(
        session.execute(
            sa.select(OutboxEvent.type)
            .where(OutboxEvent.payment_id == payment.id)
            .order_by(OutboxEvent.created_at)
        ).scalars()
    )


def deliveries(session, gateway: str | None = None) -> list[GatewayWebhook]:
    stmt = sa.select(GatewayWebhook).order_by(GatewayWebhook.received_at)
    if gateway is not None:
        stmt = stmt.where(GatewayWebhook.gateway == gateway)
    return list(session.execute(stmt.execution_options(populate_existing=True)).scalars())


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(params=sorted(GATEWAYS))
def gateway(request) -> Gateway:
    return GATEWAYS[request.param]


@pytest.fixture
def merchant(dbsession, settings):
    """(merchant, Authorization headers) of an active merchant."""
    return merchant_headers(dbsession, settings)


@pytest.fixture
def make_payment(dbsession, settings):
    def make(merchant, **fields):
        return create_payment_row(dbsession, settings, merchant, **fields)

    return make


@pytest.fixture(scope="session")
def restricted_app(app_settings):
    """The app as a production-like server runs it: no gateway secrets, no simulation."""
    from payportal import main

    app = main(
        {},
        **{
            **app_settings,
            "payportal.allow_simulation": "false",
            "payportal.webhook_secret": "",
            "payportal.stripe_webhook_secret": "",
            "payportal.paystack_secret_key": "",
            "payportal.flutterwave_secret_hash": "",
        },
    )
    yield app
    app.registry.dbengine.dispose()


@pytest.fixture
def restricted_testapp(restricted_app, connection):
    return webtest.TestApp(
        restricted_app,
        extra_environ={TEST_CONNECTION_KEY: connection, "HTTP_HOST": "localhost"},
    )
