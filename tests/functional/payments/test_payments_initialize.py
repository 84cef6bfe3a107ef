"""POST payments/initialize: a pending payment, its first transition and its event, or a 4xx
and nothing written."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from payportal.events.models import OutboxEvent
from payportal.payment_methods.models import PaymentMethod
from payportal.payments.models import Payment, PaymentTransition
from tests.factories import create_api_key, create_merchant
from tests.functional.payments.conftest import API, initialize, money_rows


def test_initialize_records_payment_transition_and_event(testapp, dbsession, settings, merchant):
    m, headers = merchant
    r = initialize(
        testapp,
        headers,
        amount=1050,
        currency="USD",
        description="Order 1234",
        customer_email="Ada@Example.COM",
        customer_name="Ada Lovelace",
        customer_phone="+44 20 7946 0000",
        metadata={"order_id": "1234", "items": 3, "gift": True},
    )
    payment = r.json["payment"]
    assert re.fullmatch(r"pay_[A-Za-z0-9_-]{20,}", payment["reference"])
    assert payment["status"] == "pending"
    assert payment["checkout_url"] == f"http://localhost/checkout/{payment['reference']}"
    assert (payment["amount"], payment["currency"], payment["gateway"]) == (1050, "USD", "internal")
    assert payment["customer_email"] == "ada@example.com"
    assert payment["metadata"] == {"order_id": "1234", "items": 3, "gift": True}
    assert (payment["fee"], payment["net_amount"], payment["amount_refunded"]) == (0, None, 0)
    created = dt.datetime.fromisoformat(payment["created_at"])
    expires = dt.datetime.fromisoformat(payment["expires_at"])
    assert expires - created == dt.timedelta(seconds=settings.payment_ttl)
    assert payment["created_at"].endswith("Z")

    row = dbsession.scalars(sa.select(Payment).where(Payment.merchant_id == m.id)).one()
    assert (str(row.id), row.version) == (payment["id"], 1)
    transition = dbsession.scalars(
        sa.select(PaymentTransition).where(PaymentTransition.payment_id == row.id)
    ).one()
    assert (transition.from_status, transition.to_status, transition.source) == (
        None,
        "pending",
        "api",
    )
    assert transition.actor == f"merchant:{m.id}"
    event = dbsession.scalars(sa.select(OutboxEvent).where(OutboxEvent.payment_id == row.id)).one()
    assert event.type == "payment.initiated"
    assert event.data == payment
    assert event.correlation_id == r.headers["X-Correlation-ID"]


def test_references_are_unique_and_gateway_is_kept(testapp, merchant):
    _m, headers = merchant
    refs = {
        initialize(testapp, headers, gateway=gateway).json["payment"]["reference"]
        for gateway in ("stripe", "paystack", "flutterwave", "paypal", "internal")
    }
    assert len(refs) == 5
    listed = testapp.get(API, headers=headers).json["data"]
    assert sorted(p["gateway"] for p in listed) == [
        "flutterwave",
        "internal",
        "paypal",
        "paystack",
        "stripe",
    ]


@pytest.mark.parametrize(
    ("currency", "amount"), [("JPY", 500), ("KWD", 1_234), ("NGN", 99_999_999_999)]
)
def test_amount_is_in_the_currency_minor_unit(testapp, merchant, currency, amount):
    _m, headers = merchant
    payment = initialize(testapp, headers, amount=amount, currency=currency).json["payment"]
    assert (payment["amount"], payment["currency"]) == (amount, currency)


def test_an_api_key_can_initialize(testapp, dbsession, settings):
    m = create_merchant(dbsession, settings)
    _row, key = create_api_key(dbsession, m)
    initialize(testapp, {"Authorization": f"Bearer {key}"})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -100}, "amount"),
        ({"amount": "100"}, "amount"),
        ({"amount": 10.5}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": None}, "amount"),
        ({"amount": 100_000_000_000}, "amount"),  # over max_payment_amount
        ({"amount": 2**63}, "amount"),
        ({"currency": "usd"}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": None}, "currency"),
        ({"gateway": "square"}, "gateway"),
        ({"cvv": "123"}, "cvv"),
        ({"customer_email": "not-an-email"}, "customer_email"),
        ({"customer_phone": "call me"}, "customer_phone"),
        ({"description": "x" * 1001}, "description"),
        ({"payment_method_id": "not-a-uuid"}, "payment_method_id"),
        ({"metadata": {"nested": {"a": 1}}}, "metadata.nested"),
        ({"metadata": {f"k{i}": i for i in range(51)}}, "metadata"),
        ({"metadata": {"k": "v" * 501}}, "metadata.k"),
    ],
)
def test_invalid_body_is_422_and_writes_nothing(testapp, dbsession, merchant, body, field):
    m, headers = merchant
    r = initialize(testapp, headers, status=422, **body)
    error = r.json["error"]
    assert error["type"] == "validation_error"
    assert any(d["field"].startswith(field) for d in error["details"]), error
    assert money_rows(dbsession, m.id)["payments"] == 0
    assert money_rows(dbsession, m.id)["events"] == 0


def test_missing_fields_are_named(testapp, merchant):
    _m, headers = merchant
    r = testapp.post_json(f"{API}/initialize", {}, headers=headers, status=422)
    assert {d["field"] for d in r.json["error"]["details"]} == {"amount", "currency"}


def test_not_json_is_400_and_wrong_media_type_is_415(testapp, merchant):
    _m, headers = merchant
    r = testapp.post(
        f"{API}/initialize",
        b"{amount: 1",
        headers={**headers, "Content-Type": "application/json"},
        status=400,
    )
    assert r.json["error"]["type"] == "invalid_request"
    testapp.post(
        f"{API}/initialize",
        b"amount=1&currency=USD",
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        status=415,
    )


def test_without_credentials_is_401(testapp):
    r = testapp.post_json(f"{API}/initialize", {"amount": 100, "currency": "USD"}, status=401)
    assert r.json["error"]["type"] == "authentication_error"


def _method(session, merchant, **fields) -> PaymentMethod:
    method = PaymentMethod(
        merchant_id=merchant.id,
        name=fields.pop("name", "Company card"),
        type="card",
        brand="visa",
        last4="4242",
        expires_at=fields.pop("expires_at", dt.datetime.now(dt.UTC) + dt.timedelta(days=365)),
        **fields,
    )
    session.add(method)
    session.flush()
    return method


def test_an_own_active_payment_method_is_accepted(testapp, dbsession, merchant):
    m, headers = merchant
    method = _method(dbsession, m, metadata_={"currencies": ["usd", "EUR"]})
    payment = initialize(testapp, headers, payment_method_id=str(method.id)).json["payment"]
    assert payment["payment_method_id"] == str(method.id)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("foreign", "no such payment method"),
        ("deleted", "no such payment method"),
        ("inactive", "inactive"),
        ("blocked", "blocked"),
        ("expired_status", "expired"),
        ("expired_date", "expired"),
        ("wrong_currency", "does not accept USD"),
    ],
)
def test_an_unusable_payment_method_is_422(testapp, dbsession, settings, merchant, kind, message):
    m, headers = merchant
    now = dt.datetime.now(dt.UTC)
    owner = create_merchant(dbsession, settings) if kind == "foreign" else m
    fields = {
        "foreign": {},
        "deleted": {"deleted_at": now},
        "inactive": {"status": "inactive"},
        "blocked": {"status": "blocked"},
        "expired_status": {"status": "expired"},
        "expired_date": {"expires_at": now - dt.timedelta(days=1)},
        "wrong_currency": {"metadata_": {"currencies": ["EUR", "GBP"]}},
    }[kind]
    method = _method(dbsession, owner, **fields)
    r = initialize(testapp, headers, status=422, payment_method_id=str(method.id))
    detail = r.json["error"]["details"][0]
    assert detail["field"] == "payment_method_id"
    assert message in detail["message"]
    assert money_rows(dbsession, m.id)["payments"] == 0
