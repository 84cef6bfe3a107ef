"""GET payments/{reference}/events (the timeline) and GET payments/statistics/summary."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from payportal.gateways.models import GatewayWebhook
from payportal.payments.models import Payment
from tests.functional.payments.conftest import API


def test_the_timeline_tells_the_payments_story_in_order(testapp, dbsession, merchant, make_payment):
    m, headers = merchant
    payment = make_payment(m, "completed", amount=4_000)
    dbsession.add(
        GatewayWebhook(
            gateway="stripe",
            gateway_event_id="evt_1",
            event_type="charge.refunded",
            signature_valid=True,
            payload={"secret_looking": "never shown"},
            reference=payment.reference,
            payment_id=payment.id,
            merchant_id=m.id,
            outcome="processed",
            received_at=dt.datetime.now(dt.UTC),
        )
    )
    dbsession.flush()
    testapp.post_json(
        f"{API}/{payment.reference}/refunds", {"amount": 1_000, "reason": "late"}, headers=headers
    )
    body = testapp.get(f"{API}/{payment.reference}/events", headers=headers).json
    assert body["reference"] == payment.reference
    story = [
        (
            e["kind"],
            e.get("to_status") or e.get("type") or e.get("event_type") or e.get("amount"),
        )
        for e in body["data"]
    ]
    assert story == [
        ("transition", "pending"),
        ("event", "payment.initiated"),
        ("transition", "completed"),
        ("event", "payment.completed"),
        ("webhook", "charge.refunded"),
        ("refund", 1_000),
        ("transition", "partially_refunded"),
        ("event", "payment.partially_refunded"),
    ]
    times = [e["at"] for e in body["data"]]
    assert times == sorted(times)
    webhook = next(e for e in body["data"] if e["kind"] == "webhook")
    assert webhook == {
        "kind": "webhook",
        "at": webhook["at"],
        "gateway": "stripe",
        "gateway_event_id": "evt_1",
        "event_type": "charge.refunded",
        "signature_valid": True,
        "outcome": "processed",
    }
    refund = next(e for e in body["data"] if e["kind"] == "refund")
    assert (refund["reason"], refund["currency"], refund["source"]) == ("late", "USD", "api")
    transition = body["data"][-2]
    assert (transition["from_status"], transition["actor"]) == ("completed", f"merchant:{m.id}")


def _created(session, payment, when):
    session.execute(sa.update(Payment).where(Payment.id == payment.id).values(created_at=when))


def test_statistics_count_and_sum_by_status_and_currency(
    testapp, dbsession, merchant, other_merchant, make_payment
):
    m, headers = merchant
    other, _ = other_merchant
    make_payment(m, "completed", amount=10_000)  # fee 320, net 9,680
    make_payment(m, "completed", amount=5_000)  # fee 175, net 4,825
    make_payment(m, "partially_refunded", amount=2_000)  # refunds 1,000; fee 88, net 912
    make_payment(m, "failed", amount=700)
    make_payment(m, amount=300)
    make_payment(m, "completed", amount=500, currency="JPY")  # fee 14 (14.5 -> 14), net 486
    make_payment(other, "completed", amount=99_999)  # another merchant: never counted
    old = make_payment(m, "completed", amount=123)
    _created(dbsession, old, dt.datetime.now(dt.UTC) - dt.timedelta(days=40))  # outside 30 days

    body = testapp.get(f"{API}/statistics/summary", headers=headers).json
    assert body["currency"] is None
    assert {(s["currency"], s["status"]): (s["count"], s["amount"]) for s in body["by_status"]} == {
        ("JPY", "completed"): (1, 500),
        ("USD", "completed"): (2, 15_000),
        ("USD", "failed"): (1, 700),
        ("USD", "partially_refunded"): (1, 2_000),
        ("USD", "pending"): (1, 300),
    }
    assert body["by_currency"] == [
        {
            "currency": "JPY",
            "count": 1,
            "settled_count": 1,
            "settled_amount": 500,
            "amount_refunded": 0,
            "fee": 14,
            "net_amount": 486,
        },
        {
            "currency": "USD",
            "count": 5,
            "settled_count": 3,
            "settled_amount": 17_000,
            "amount_refunded": 1_000,
            "fee": 320 + 175 + 88,
            "net_amount": 9_680 + 4_825 + 912,
        },
    ]

    only_jpy = testapp.get(f"{API}/statistics/summary", {"currency": "JPY"}, headers=headers).json
    assert [c["currency"] for c in only_jpy["by_currency"]] == ["JPY"]
    assert only_jpy["currency"] == "JPY"

    long_ago = testapp.get(
        f"{API}/statistics/summary",
        {
            "from": (dt.datetime.now(dt.UTC) - dt.timedelta(days=41)).isoformat(),
            "to": (dt.datetime.now(dt.UTC) - dt.timedelta(days=39)).isoformat(),
        },
        headers=headers,
    ).json
    assert long_ago["by_status"] == [
        {"status": "completed", "currency": "USD", "count": 1, "amount": 123}
    ]


def test_statistics_of_an_empty_period(testapp, merchant):
    _m, headers = merchant
    body = testapp.get(
        f"{API}/statistics/summary",
        {"from": "2001-01-01T00:00:00Z", "to": "2001-02-01T00:00:00Z"},
        headers=headers,
    ).json
    assert body == {
        "created_from": "2001-01-01T00:00:00Z",
        "created_to": "2001-02-01T00:00:00Z",
        "currency": None,
        "by_status": [],
        "by_currency": [],
    }


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2030-02-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"},
        {"from": "2030-01-01T00:00:00"},
        {"currency": "usd"},
        {"from_": "2030-01-01T00:00:00Z"},
        {"status": "completed"},
    ],
)
def test_bad_statistics_parameters_are_422(testapp, merchant, params):
    _m, headers = merchant
    testapp.get(f"{API}/statistics/summary", params, headers=headers, status=422)


def test_statistics_need_credentials(testapp):
    testapp.get(f"{API}/statistics/summary", status=401)
