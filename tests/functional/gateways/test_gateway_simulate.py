"""webhooks/simulate: a signed-in merchant plays the gateway for its own payments (test mode)."""

from __future__ import annotations

import pytest

from tests.factories import bearer, create_api_key, merchant_headers
from tests.functional.gateways.conftest import (
    WEBHOOKS,
    deliveries,
    event_types,
    reload,
    transitions,
)

SIMULATE = f"{WEBHOOKS}/simulate"


def test_a_merchant_completes_its_own_payment(testapp, dbsession, merchant, make_payment):
    owner, headers = merchant
    payment = make_payment(owner)

    response = testapp.post_json(
        SIMULATE,
        {"reference": payment.reference, "status": "completed", "gateway_reference": "sim_42"},
        headers=headers,
    )

    assert response.json["received"] is True
    assert response.json["outcome"] == "processed"
    assert response.json["payment"]["status"] == "completed"
    assert response.json["payment"]["gateway_reference"] == "sim_42"
    assert reload(dbsession, payment).status == "completed"
    assert transitions(dbsession, payment)[-1] == ("pending", "completed", "webhook:simulation")
    assert event_types(dbsession, payment) == ["payment.completed"]
    (delivery,) = deliveries(dbsession, "simulation")
    assert (delivery.outcome, delivery.payment_id) == ("processed", payment.id)


def test_a_simulated_decline_carries_its_reason(testapp, dbsession, merchant, make_payment):
    owner, headers = merchant
    payment = make_payment(owner)

    testapp.post_json(
        SIMULATE,
        {"reference": payment.reference, "status": "failed", "failure_reason": "Card stolen"},
        headers=headers,
    )

    payment = reload(dbsession, payment)
    assert (payment.status, payment.failure_code, payment.failure_reason) == (
        "failed",
        "simulated_decline",
        "Card stolen",
    )


def test_a_simulated_refund_refunds_what_is_left(testapp, dbsession, merchant, make_payment):
    owner, headers = merchant
    payment = make_payment(owner, status="completed", amount=7_000)

    response = testapp.post_json(
        SIMULATE, {"reference": payment.reference, "status": "refunded"}, headers=headers
    )

    assert response.json["payment"]["amount_refunded"] == 7_000
    assert reload(dbsession, payment).status == "refunded"


def test_an_api_key_may_simulate(testapp, dbsession, merchant, make_payment):
    owner, _headers = merchant
    _row, key = create_api_key(dbsession, owner)
    payment = make_payment(owner)

    testapp.post_json(
        SIMULATE, {"reference": payment.reference, "status": "processing"}, headers=bearer(key)
    )

    assert reload(dbsession, payment).status == "processing"


def test_another_merchants_payment_is_404_and_unchanged(
    testapp, dbsession, settings, merchant, make_payment
):
    _owner, headers = merchant
    other, _ = merchant_headers(dbsession, settings)
    theirs = make_payment(other)

    response = testapp.post_json(
        SIMULATE,
        {"reference": theirs.reference, "status": "completed"},
        headers=headers,
        status=404,
    )

    assert response.json["error"]["type"] == "not_found"
    assert reload(dbsession, theirs).status == "pending"
    assert deliveries(dbsession) == []


def test_an_outcome_the_payment_cannot_take_is_409_and_records_nothing(
    testapp, dbsession, merchant, make_payment
):
    owner, headers = merchant
    payment = make_payment(owner, status="completed")

    response = testapp.post_json(
        SIMULATE,
        {"reference": payment.reference, "status": "processing"},
        headers=headers,
        status=409,
    )

    assert response.json["error"]["code"] == "invalid_transition"
    assert reload(dbsession, payment).status == "completed"
    assert deliveries(dbsession) == []


def test_without_credentials_it_is_401(testapp, merchant, make_payment):
    payment = make_payment(merchant[0])

    testapp.post_json(SIMULATE, {"reference": payment.reference, "status": "completed"}, status=401)


def test_an_inactive_merchant_may_not_move_money(testapp, dbsession, settings, make_payment):
    owner, headers = merchant_headers(dbsession, settings, status="suspended")
    payment = make_payment(owner)

    response = testapp.post_json(
        SIMULATE,
        {"reference": payment.reference, "status": "completed"},
        headers=headers,
        status=403,
    )

    assert response.json["error"]["code"] == "merchant_inactive"
    assert reload(dbsession, payment).status == "pending"


@pytest.mark.parametrize(
    "body",
    [
        {"status": "completed"},
        {"reference": "pay_x", "status": "expired"},
        {"reference": "pay_x", "status": "completed", "amount": 5},
    ],
)
def test_a_bad_body_is_422(testapp, merchant, body):
    testapp.post_json(SIMULATE, body, headers=merchant[1], status=422)


def test_with_simulation_off_the_path_does_not_exist(
    restricted_testapp, dbsession, merchant, make_payment
):
    owner, headers = merchant
    payment = make_payment(owner)

    response = restricted_testapp.post_json(
        SIMULATE,
        {"reference": payment.reference, "status": "completed"},
        headers=headers,
        status=404,
    )

    assert response.json["error"]["type"] == "not_found"
    assert reload(dbsession, payment).status == "pending"


def test_a_retry_with_the_same_idempotency_key_replays_without_moving_again(
    testapp, dbsession, merchant, make_payment
):
    owner, headers = merchant
    payment = make_payment(owner, status="completed", amount=8_000)
    body = {"reference": payment.reference, "status": "refunded"}
    keyed = {**headers, "Idempotency-Key": "refund-sim-1"}

    first = testapp.post_json(SIMULATE, body, headers=keyed)
    second = testapp.post_json(SIMULATE, body, headers=keyed)

    assert second.json == first.json
    assert event_types(dbsession, payment) == ["payment.refunded"]
