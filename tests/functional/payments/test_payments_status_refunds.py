"""PUT payments/{reference}/status and POST payments/{reference}/refunds over HTTP."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from payportal.events.models import OutboxEvent
from payportal.payments.models import PaymentTransition
from tests.factories import merchant_headers
from tests.functional.payments.conftest import API, initialize, money_rows


def put_status(testapp, headers, reference, body: dict, expect=200):
    return testapp.put_json(f"{API}/{reference}/status", body, headers=headers, status=expect)


def refund(testapp, headers, reference, status=201, **body):
    return testapp.post_json(f"{API}/{reference}/refunds", body, headers=headers, status=status)


def test_completing_fixes_fees_and_net_amount(testapp, dbsession, merchant):
    m, headers = merchant
    ref = initialize(testapp, headers, amount=10_000).json["payment"]["reference"]
    payment = put_status(testapp, headers, ref, {"status": "completed"}).json["payment"]
    # 2.9 % of 10,000 = 290, plus the fixed 30 USD cents of the test settings
    assert (payment["status"], payment["fee"], payment["net_amount"]) == ("completed", 320, 9_680)
    assert payment["completed_at"] is not None
    event = dbsession.scalars(
        sa.select(OutboxEvent).where(
            OutboxEvent.merchant_id == m.id, OutboxEvent.type == "payment.completed"
        )
    ).one()
    assert event.data == payment


def test_fees_follow_the_currency(testapp, merchant):
    _m, headers = merchant
    ref = initialize(testapp, headers, amount=1_550, currency="JPY").json["payment"]["reference"]
    payment = put_status(testapp, headers, ref, {"status": "completed"}).json["payment"]
    # 2.9 % of 1,550 = 44.95 -> 45; no fixed fee is configured for JPY
    assert (payment["fee"], payment["net_amount"]) == (45, 1_505)


def test_processing_then_completed_with_gateway_reference(testapp, dbsession, merchant):
    m, headers = merchant
    ref = initialize(testapp, headers).json["payment"]["reference"]
    put_status(testapp, headers, ref, {"status": "processing", "gateway_reference": "ch_123"})
    payment = put_status(testapp, headers, ref, {"status": "completed"}).json["payment"]
    assert (payment["status"], payment["gateway_reference"]) == ("completed", "ch_123")
    steps = dbsession.execute(
        sa.select(PaymentTransition.from_status, PaymentTransition.to_status)
        .where(PaymentTransition.merchant_id == m.id)
        .order_by(PaymentTransition.created_at)
    ).all()
    assert [(str(a) if a else None, str(b)) for a, b in steps] == [
        (None, "pending"),
        ("pending", "processing"),
        ("processing", "completed"),
    ]


def test_failing_records_code_and_reason(testapp, dbsession, merchant):
    m, headers = merchant
    ref = initialize(testapp, headers).json["payment"]["reference"]
    body = {
        "status": "failed",
        "failure_code": "card_declined",
        "failure_reason": "insufficient funds",
    }
    payment = put_status(testapp, headers, ref, body).json["payment"]
    assert (payment["failure_code"], payment["failure_reason"]) == (
        "card_declined",
        "insufficient funds",
    )
    assert (payment["fee"], payment["net_amount"]) == (0, None)
    reason = dbsession.scalar(
        sa.select(PaymentTransition.reason).where(
            PaymentTransition.merchant_id == m.id, PaymentTransition.to_status == "failed"
        )
    )
    assert reason == "insufficient funds"


@pytest.mark.parametrize(
    ("start", "target"),
    [
        ("completed", "pending"),
        ("failed", "completed"),
        ("cancelled", "processing"),
        ("expired", "completed"),
        ("refunded", "completed"),
        ("processing", "expired"),
        ("pending", "disputed"),
        ("pending", "refunded"),
        ("pending", "partially_refunded"),
    ],
)
def test_a_move_the_state_machine_forbids_is_409_naming_both(
    testapp, dbsession, merchant, make_payment, start, target
):
    m, headers = merchant
    payment = make_payment(m, start)
    before = money_rows(dbsession, m.id)
    r = put_status(testapp, headers, payment.reference, {"status": target}, 409)
    error = r.json["error"]
    assert (error["type"], error["code"]) == ("conflict", "invalid_transition")
    assert f"from {start} to {target}" in error["message"]
    assert money_rows(dbsession, m.id) == before


@pytest.mark.parametrize("target", ["refunded", "partially_refunded"])
def test_refund_statuses_are_reached_by_refunding(
    testapp, dbsession, merchant, make_payment, target
):
    m, headers = merchant
    payment = make_payment(m, "completed")
    before = money_rows(dbsession, m.id)
    r = put_status(testapp, headers, payment.reference, {"status": target}, 422)
    assert "refunds" in r.json["error"]["details"][0]["message"]
    assert money_rows(dbsession, m.id) == before


@pytest.mark.parametrize(
    "body",
    [
        {"status": "paid"},
        {},
        {"status": "completed", "failure_code": "x"},
        {"status": "completed", "amount": 5},
        {"status": "failed", "failure_code": "has spaces"},
    ],
)
def test_bad_status_bodies_are_422(testapp, dbsession, merchant, make_payment, body):
    m, headers = merchant
    payment = make_payment(m)
    before = money_rows(dbsession, m.id)
    put_status(testapp, headers, payment.reference, body, 422)
    assert money_rows(dbsession, m.id) == before


def test_refund_defaults_to_everything_left(testapp, merchant, make_payment):
    m, headers = merchant
    payment = make_payment(m, "completed", amount=5_000)
    body = refund(testapp, headers, payment.reference, reason="customer asked").json
    assert body["refund"]["amount"] == 5_000
    assert body["refund"]["reason"] == "customer asked"
    assert body["refund"]["reference"].startswith("re_")
    assert body["payment"]["status"] == "refunded"
    assert body["payment"]["amount_refunded"] == 5_000
    # 2.9 % of 5,000 = 145, + 30: the fee stays with the platform, net goes negative
    assert body["payment"]["net_amount"] == -175


def test_partial_refunds_until_nothing_is_left(testapp, dbsession, merchant, make_payment):
    m, headers = merchant
    payment = make_payment(m, "completed", amount=10_000)
    first = refund(testapp, headers, payment.reference, amount=2_500).json
    assert (first["payment"]["status"], first["payment"]["amount_refunded"]) == (
        "partially_refunded",
        2_500,
    )
    assert first["payment"]["net_amount"] == 9_680 - 2_500
    second = refund(testapp, headers, payment.reference, amount=2_500).json["payment"]
    assert (second["status"], second["amount_refunded"]) == ("partially_refunded", 5_000)

    before = money_rows(dbsession, m.id)
    r = refund(testapp, headers, payment.reference, status=422, amount=5_001)
    assert r.json["error"]["details"] == [{"field": "amount", "message": "must be at most 5000"}]
    assert money_rows(dbsession, m.id) == before

    last = refund(testapp, headers, payment.reference).json
    assert (last["refund"]["amount"], last["payment"]["status"]) == (5_000, "refunded")
    types = dbsession.scalars(
        sa.select(OutboxEvent.type)
        .where(OutboxEvent.merchant_id == m.id)
        .order_by(OutboxEvent.created_at)
    ).all()
    assert types[-3:] == ["payment.partially_refunded"] * 2 + ["payment.refunded"]


@pytest.mark.parametrize("start", ["pending", "processing", "failed", "refunded", "disputed"])
def test_refunding_a_payment_not_completed_is_409(
    testapp, dbsession, merchant, make_payment, start
):
    m, headers = merchant
    payment = make_payment(m, start)
    before = money_rows(dbsession, m.id)
    r = refund(testapp, headers, payment.reference, status=409)
    assert r.json["error"]["code"] == "invalid_transition"
    assert start in r.json["error"]["message"]
    assert money_rows(dbsession, m.id) == before


@pytest.mark.parametrize(
    "body", [{"amount": 0}, {"amount": -1}, {"amount": "10"}, {"amount": 1.5}, {"note": "x"}]
)
def test_bad_refund_bodies_are_422(testapp, dbsession, merchant, make_payment, body):
    m, headers = merchant
    payment = make_payment(m, "completed")
    before = money_rows(dbsession, m.id)
    refund(testapp, headers, payment.reference, status=422, **body)
    assert money_rows(dbsession, m.id) == before


def _write(testapp, headers, verb, reference, status):
    if verb == "status":
        return put_status(testapp, headers, reference, {"status": "completed"}, status)
    if verb == "refunds":
        return refund(testapp, headers, reference, status=status)
    return testapp.get(f"{API}/{reference}{verb}", headers=headers, status=status)


@pytest.mark.parametrize("verb", ["", "/events", "status", "refunds"])
def test_another_merchants_payment_is_404_on_every_verb(
    testapp, dbsession, merchant, other_merchant, make_payment, verb
):
    m, _headers = merchant
    _other, other_headers = other_merchant
    payment = make_payment(m, "completed")
    before = money_rows(dbsession, m.id)
    r = _write(testapp, other_headers, verb, payment.reference, 404)
    assert r.json["error"]["type"] == "not_found"
    assert money_rows(dbsession, m.id) == before


@pytest.mark.parametrize("merchant_status", ["pending", "suspended", "inactive"])
def test_an_inactive_merchant_reads_but_moves_no_money(
    testapp, dbsession, settings, make_payment, merchant_status
):
    m, headers = merchant_headers(dbsession, settings, status=merchant_status)
    pending = make_payment(m)
    completed = make_payment(m, "completed")
    before = money_rows(dbsession, m.id)
    refused = [
        initialize(testapp, headers, status=403),
        put_status(testapp, headers, pending.reference, {"status": "cancelled"}, 403),
        refund(testapp, headers, completed.reference, status=403),
    ]
    for r in refused:
        assert (r.json["error"]["type"], r.json["error"]["code"]) == (
            "permission_error",
            "merchant_inactive",
        )
    assert money_rows(dbsession, m.id) == before
    testapp.get(API, headers=headers, status=200)
    testapp.get(f"{API}/{pending.reference}", headers=headers, status=200)
    testapp.get(f"{API}/{completed.reference}/events", headers=headers, status=200)
    testapp.get(f"{API}/statistics/summary", headers=headers, status=200)
