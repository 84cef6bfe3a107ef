"""webhooks/payment: the generic signed format, its timestamp window and what its fields do."""

from __future__ import annotations

import time

import pytest

from tests.functional.gateways.conftest import (
    GATEWAYS,
    deliveries,
    encode,
    generic_event,
    post_event,
    reload,
    sign_generic,
    transitions,
)

GENERIC = GATEWAYS["generic"]


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_a_timestamp_outside_300_seconds_either_way_is_401(
    testapp, dbsession, merchant, make_payment, skew
):
    payment = make_payment(merchant[0])
    raw = encode(generic_event(payment.reference, "completed"))
    headers = sign_generic(raw, timestamp=int(time.time()) + skew)

    response = post_event(testapp, GENERIC, raw, status=401, headers=headers)

    assert "300 seconds" in response.json["error"]["message"]
    assert reload(dbsession, payment).status == "pending"
    assert deliveries(dbsession) == []


@pytest.mark.parametrize("skew", [-290, 290])
def test_a_timestamp_inside_the_window_is_accepted(
    testapp, dbsession, merchant, make_payment, skew
):
    payment = make_payment(merchant[0])
    raw = encode(generic_event(payment.reference, "completed"))

    post_event(testapp, GENERIC, raw, headers=sign_generic(raw, timestamp=int(time.time()) + skew))

    assert reload(dbsession, payment).status == "completed"


def test_the_timestamp_is_part_of_what_is_signed(testapp, dbsession, merchant, make_payment):
    payment = make_payment(merchant[0])
    raw = encode(generic_event(payment.reference, "completed"))
    headers = sign_generic(raw, timestamp=int(time.time()) - 10)
    headers["X-Timestamp"] = str(int(time.time()))

    post_event(testapp, GENERIC, raw, status=401, headers=headers)

    assert reload(dbsession, payment).status == "pending"


@pytest.mark.parametrize("timestamp", ["", "soon", "1.5e9", "-5"])
def test_a_timestamp_that_is_not_unix_seconds_is_401(testapp, timestamp):
    raw = b'{"event_id": "e1"}'
    headers = {**sign_generic(raw), "X-Timestamp": timestamp}

    post_event(testapp, GENERIC, raw, status=401, headers=headers)


def test_processing_then_completed_with_the_gateway_reference_and_fee(
    testapp, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0], amount=10_000, currency="USD")
    post_event(testapp, GENERIC, generic_event(payment.reference, "processing"))

    post_event(
        testapp,
        GENERIC,
        generic_event(
            payment.reference,
            "completed",
            gateway_reference="gw_88231",
            data={"amount": 10_000, "currency": "USD", "fee": 120},
        ),
    )

    payment = reload(dbsession, payment)
    assert (payment.status, payment.gateway_reference, payment.gateway_fee) == (
        "completed",
        "gw_88231",
        120,
    )
    # platform fee 2.9 % + 30 (test settings) + the gateway's 120
    assert payment.net_amount == 10_000 - 320 - 120
    assert [t[1] for t in transitions(dbsession, payment)] == ["pending", "processing", "completed"]


def test_partial_then_full_refunds_carry_amounts_and_refund_ids(
    testapp, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0], amount=10_000, status="completed")

    post_event(
        testapp,
        GENERIC,
        generic_event(
            payment.reference,
            "partially_refunded",
            data={"refund_amount": 3_000, "refund_id": "rf_a"},
        ),
    )
    assert reload(dbsession, payment).amount_refunded == 3_000
    post_event(
        testapp, GENERIC, generic_event(payment.reference, "refunded", data={"refund_id": "rf_b"})
    )

    payment = reload(dbsession, payment)
    assert (payment.status, payment.amount_refunded) == ("refunded", 10_000)
    assert [t[1] for t in transitions(dbsession, payment)][-2:] == [
        "partially_refunded",
        "refunded",
    ]


def test_a_refund_id_already_recorded_refunds_nothing_more(
    testapp, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0], amount=10_000, status="completed")
    data = {"refund_amount": 1_000, "refund_id": "rf_same"}
    post_event(testapp, GENERIC, generic_event(payment.reference, "partially_refunded", data=data))

    again = post_event(
        testapp, GENERIC, generic_event(payment.reference, "partially_refunded", data=data)
    )

    assert again.json["outcome"] == "ignored"
    assert reload(dbsession, payment).amount_refunded == 1_000


def test_a_refund_over_what_is_left_is_a_mismatch(testapp, dbsession, merchant, make_payment):
    payment = make_payment(merchant[0], amount=10_000, status="completed")

    response = post_event(
        testapp,
        GENERIC,
        generic_event(payment.reference, "partially_refunded", data={"refund_amount": 10_001}),
    )

    assert response.json["outcome"] == "ignored"
    assert deliveries(dbsession)[0].outcome == "mismatch"
    assert reload(dbsession, payment).amount_refunded == 0


def test_a_partial_refund_without_an_amount_is_400(testapp, dbsession, merchant, make_payment):
    payment = make_payment(merchant[0], status="completed")

    response = post_event(
        testapp, GENERIC, generic_event(payment.reference, "partially_refunded"), status=400
    )

    assert response.json["error"]["details"][0]["field"] == "data.refund_amount"
    assert deliveries(dbsession) == []


@pytest.mark.parametrize(
    "body",
    [
        {"event": "payment.completed", "status": "completed"},
        {"event_id": 17, "event": "payment.completed", "status": "completed"},
        {"event_id": "e", "event": "x", "status": "completed", "data": {"amount": 10.5}},
        ["not", "an", "object"],
    ],
)
def test_a_signed_event_of_the_wrong_shape_is_400(testapp, dbsession, body):
    post_event(testapp, GENERIC, encode(body), status=400)

    assert deliveries(dbsession) == []


def test_a_status_payportal_does_not_act_on_is_recorded_and_ignored(
    testapp, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0])

    response = post_event(testapp, GENERIC, generic_event(payment.reference, "authorized"))

    assert response.json["outcome"] == "ignored"
    assert deliveries(dbsession)[0].outcome_detail == "payment.authorized is not acted on"
    assert reload(dbsession, payment).status == "pending"
