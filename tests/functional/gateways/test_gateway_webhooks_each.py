"""Every gateway endpoint, the same promises: a signed event moves the payment, a bad signature
changes nothing, a repeat is a duplicate, a mismatch or an unknown payment is recorded and
ignored."""

from __future__ import annotations

import pytest

from tests.functional.gateways.conftest import (
    deliveries,
    encode,
    event_types,
    flutterwave_event,
    generic_event,
    paystack_event,
    post_event,
    reload,
    sign_flutterwave_v4,
    stripe_event,
    transitions,
)

WRONG_SECRET = "not-the-configured-secret-0123456789"


def failed_event(gateway, payment) -> tuple[dict, str, str]:
    """(a failure event for the payment, the failure_code and failure_reason it should leave)"""
    ref = payment.reference
    if gateway.name == "generic":
        body = generic_event(
            ref,
            "failed",
            failure_code="card_declined",
            failure_message="Insufficient funds",
            data={"amount": payment.amount, "currency": payment.currency},
        )
        return body, "card_declined", "Insufficient funds"
    if gateway.name == "stripe":
        error = {
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        }
        body = stripe_event(ref, "failed", amount=payment.amount, last_payment_error=error)
        return body, "insufficient_funds", "Your card has insufficient funds."
    if gateway.name == "paystack":
        body = paystack_event(ref, "failed", amount=payment.amount, gateway_response="Declined")
        return body, "charge_failed", "Declined"
    body = flutterwave_event(ref, "failed", amount=payment.amount // 100)
    return body, "charge_failed", "Insufficient funds"


def test_a_signed_completion_completes_the_payment(
    testapp, dbsession, merchant, make_payment, gateway
):
    payment = make_payment(merchant[0], currency=gateway.currency)

    response = post_event(testapp, gateway, gateway.completed(payment))

    assert response.json == {"received": True, "outcome": "processed"}
    assert reload(dbsession, payment).status == "completed"
    assert transitions(dbsession, payment)[-1] == (
        "pending",
        "completed",
        f"webhook:{gateway.name}",
    )
    assert event_types(dbsession, payment) == ["payment.completed"]
    (delivery,) = deliveries(dbsession, gateway.name)
    assert (delivery.outcome, delivery.payment_id, delivery.signature_valid) == (
        "processed",
        payment.id,
        True,
    )
    assert delivery.merchant_id == payment.merchant_id


def test_a_signed_failure_fails_the_payment_with_its_reason(
    testapp, dbsession, merchant, make_payment, gateway
):
    payment = make_payment(merchant[0], currency=gateway.currency)
    body, code, reason = failed_event(gateway, payment)

    assert post_event(testapp, gateway, body).json["outcome"] == "processed"

    payment = reload(dbsession, payment)
    assert (payment.status, payment.failure_code, payment.failure_reason) == (
        "failed",
        code,
        reason,
    )
    assert event_types(dbsession, payment) == ["payment.failed"]


def test_a_wrong_secret_is_401_and_changes_nothing(
    testapp, dbsession, merchant, make_payment, gateway
):
    payment = make_payment(merchant[0], currency=gateway.currency)
    raw = encode(gateway.completed(payment))

    response = post_event(
        testapp, gateway, raw, status=401, headers=gateway.sign(raw, WRONG_SECRET)
    )

    assert response.json["error"]["type"] == "authentication_error"
    assert response.json["error"]["code"] == "invalid_signature"
    assert reload(dbsession, payment).status == "pending"
    assert deliveries(dbsession) == []
    assert event_types(dbsession, payment) == []


def test_a_tampered_body_is_401_and_changes_nothing(
    testapp, dbsession, merchant, make_payment, gateway
):
    payment = make_payment(merchant[0], currency=gateway.currency)
    signed = encode(gateway.event(payment.reference, "failed"))
    tampered = encode(gateway.completed(payment))
    # Flutterwave's v3 verif-hash is a shared secret, not a body signature: its v4 HMAC is
    sign = sign_flutterwave_v4 if gateway.name == "flutterwave" else gateway.sign

    post_event(testapp, gateway, tampered, status=401, headers=sign(signed))

    assert reload(dbsession, payment).status == "pending"
    assert deliveries(dbsession) == []


def test_a_missing_signature_is_401_and_changes_nothing(
    testapp, dbsession, merchant, make_payment, gateway
):
    payment = make_payment(merchant[0], currency=gateway.currency)

    response = post_event(testapp, gateway, gateway.completed(payment), status=401, headers={})

    assert "required" in response.json["error"]["message"]
    assert reload(dbsession, payment).status == "pending"
    assert deliveries(dbsession) == []


def test_the_same_event_again_is_a_duplicate_that_changes_nothing(
    testapp, dbsession, merchant, make_payment, gateway
):
    payment = make_payment(merchant[0], currency=gateway.currency)
    body = gateway.completed(payment)
    post_event(testapp, gateway, body)

    again = post_event(testapp, gateway, body)

    assert again.json == {"received": True, "outcome": "duplicate"}
    assert len(deliveries(dbsession, gateway.name)) == 1
    assert [t[1] for t in transitions(dbsession, payment)] == ["pending", "completed"]
    assert event_types(dbsession, payment) == ["payment.completed"]


def test_an_amount_that_differs_is_recorded_as_a_mismatch_and_ignored(
    testapp, dbsession, merchant, make_payment, gateway
):
    payment = make_payment(merchant[0], currency=gateway.currency, amount=10_000)
    if gateway.name == "generic":
        body = gateway.completed(payment, data={"amount": 1, "currency": payment.currency})
    else:
        body = gateway.completed(payment, amount=1)

    response = post_event(testapp, gateway, body)

    assert response.json == {"received": True, "outcome": "ignored"}
    (delivery,) = deliveries(dbsession, gateway.name)
    assert delivery.outcome == "mismatch"
    assert "amount" in delivery.outcome_detail
    assert reload(dbsession, payment).status == "pending"
    assert event_types(dbsession, payment) == []


def test_a_currency_that_differs_is_recorded_as_a_mismatch_and_ignored(
    testapp, dbsession, merchant, make_payment, gateway
):
    payment = make_payment(merchant[0], currency=gateway.currency)
    other = "GHS"
    if gateway.name == "generic":
        body = gateway.completed(payment, data={"amount": payment.amount, "currency": other})
    else:
        body = gateway.completed(payment, currency=other)

    assert post_event(testapp, gateway, body).json["outcome"] == "ignored"

    assert deliveries(dbsession, gateway.name)[0].outcome == "mismatch"
    assert reload(dbsession, payment).status == "pending"


def test_an_unknown_reference_is_recorded_and_ignored(
    testapp, dbsession, gateway, merchant, make_payment
):
    payment = make_payment(merchant[0], currency=gateway.currency)
    body = gateway.completed(payment)
    body_text = encode(body).replace(payment.reference.encode(), b"pay_doesnotexist")

    response = post_event(testapp, gateway, body_text)

    assert response.json == {"received": True, "outcome": "ignored"}
    (delivery,) = deliveries(dbsession, gateway.name)
    assert (delivery.outcome, delivery.payment_id, delivery.reference) == (
        "ignored",
        None,
        "pay_doesnotexist",
    )
    assert reload(dbsession, payment).status == "pending"


def test_a_signed_body_that_is_not_json_is_400(testapp, dbsession, gateway):
    raw = b'{"id": "evt_1", "type": '

    response = post_event(testapp, gateway, raw, status=400)

    assert response.json["error"]["type"] == "invalid_request"
    assert deliveries(dbsession) == []


def test_the_stored_payload_is_the_event_as_sent(
    testapp, dbsession, merchant, make_payment, gateway
):
    payment = make_payment(merchant[0], currency=gateway.currency)
    body = gateway.completed(payment)

    post_event(testapp, gateway, body)

    assert deliveries(dbsession, gateway.name)[0].payload == body


@pytest.mark.parametrize("status", ["failed", "cancelled", "expired"])
def test_nothing_moves_a_payment_out_of_a_terminal_state(
    testapp, dbsession, merchant, make_payment, gateway, status
):
    payment = make_payment(merchant[0], currency=gateway.currency, status=status)

    response = post_event(testapp, gateway, gateway.completed(payment))

    assert response.json["outcome"] == "ignored"
    assert deliveries(dbsession, gateway.name)[0].outcome_detail == (
        f"a {status} payment cannot become completed"
    )
    assert reload(dbsession, payment).status == status
    assert event_types(dbsession, payment) == []
