"""Each gateway's events, as the gateway documents them, normalised into one update."""

from __future__ import annotations

import json

import pytest

from payportal.gateways.flutterwave import parse_flutterwave_event
from payportal.gateways.generic import parse_generic_event
from payportal.gateways.paystack import parse_paystack_event
from payportal.gateways.stripe import parse_stripe_event
from payportal.gateways.updates import REFUND, MalformedEvent


def raw(document) -> bytes:
    return json.dumps(document).encode()


def test_stripe_payment_failed():
    update = parse_stripe_event(
        raw(
            {
                "id": "evt_3Q",
                "type": "payment_intent.payment_failed",
                "data": {
                    "object": {
                        "id": "pi_3Q",
                        "amount": 2000,
                        "currency": "usd",
                        "metadata": {"reference": "pay_abc"},
                        "last_payment_error": {
                            "code": "card_declined",
                            "decline_code": "stolen_card",
                            "message": "Your card was declined.",
                        },
                    }
                },
            }
        )
    )

    assert (update.gateway, update.event_id, update.reference) == ("stripe", "evt_3Q", "pay_abc")
    assert (update.action, update.amount, update.currency) == ("failed", 2000, "USD")
    assert (update.failure_code, update.failure_reason) == (
        "stolen_card",
        "Your card was declined.",
    )
    assert update.gateway_reference == "pi_3Q"


def test_stripe_charge_refunded_is_a_running_total_with_the_newest_refund():
    update = parse_stripe_event(
        raw(
            {
                "id": "evt_R",
                "type": "charge.refunded",
                "data": {
                    "object": {
                        "id": "ch_1",
                        "amount": 5000,
                        "amount_refunded": 3000,
                        "currency": "eur",
                        "payment_intent": "pi_1",
                        "metadata": {"reference": "pay_r"},
                        "refunds": {"data": [{"id": "re_new"}, {"id": "re_old"}]},
                    }
                },
            }
        )
    )

    assert (update.action, update.refund_amount, update.refund_is_cumulative) == (
        REFUND,
        3000,
        True,
    )
    assert (update.refund_id, update.gateway_reference, update.amount) == ("re_new", "pi_1", 5000)


def test_stripe_event_without_our_reference_has_none():
    update = parse_stripe_event(
        raw({"id": "evt_x", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi"}}})
    )

    assert update.reference is None


def test_paystack_event_ids_combine_the_event_and_the_object():
    charge = parse_paystack_event(
        raw(
            {
                "event": "charge.success",
                "data": {
                    "id": 302961,
                    "reference": "pay_p",
                    "amount": 20000,
                    "currency": "NGN",
                    "fees": 300,
                },
            }
        )
    )
    refund = parse_paystack_event(
        raw(
            {
                "event": "refund.processed",
                "data": {
                    "transaction_reference": "pay_p",
                    "refund_reference": "rf_9",
                    "amount": "10000",
                    "currency": "NGN",
                },
            }
        )
    )

    assert (charge.event_id, charge.action, charge.gateway_fee) == (
        "charge.success:302961",
        "completed",
        300,
    )
    assert (refund.event_id, refund.reference, refund.refund_amount) == (
        "refund.processed:rf_9",
        "pay_p",
        10000,
    )
    assert refund.amount is None  # a refund's amount is not the payment's


def test_flutterwave_amounts_are_major_units_kept_exact():
    update = parse_flutterwave_event(
        b'{"event":"charge.completed","data":{"id":9,"tx_ref":"pay_f","amount":1234.56,'
        b'"currency":"KES","status":"successful","app_fee":17.285}}'
    )

    assert (update.amount, update.gateway_fee, update.currency) == (123456, 1728, "KES")
    assert update.event_id == "charge.completed:9:successful"


def test_flutterwave_more_decimals_than_the_currency_has_is_malformed():
    with pytest.raises(MalformedEvent):
        parse_flutterwave_event(
            b'{"event":"charge.completed","data":{"id":9,"tx_ref":"p","amount":10.001,'
            b'"currency":"USD","status":"successful"}}'
        )


def test_flutterwave_in_a_currency_payportal_does_not_take_leaves_the_amount_unread():
    update = parse_flutterwave_event(
        raw(
            {
                "event": "charge.completed",
                "data": {
                    "id": 1,
                    "tx_ref": "p",
                    "amount": 5,
                    "currency": "XOF",
                    "status": "successful",
                },
            }
        )
    )

    assert (update.amount, update.currency) == (None, "XOF")


def test_generic_statuses():
    base = {"event_id": "e1", "event": "x", "reference": "pay_g"}

    assert parse_generic_event(raw({**base, "status": "completed"})).action == "completed"
    assert parse_generic_event(raw({**base, "status": "refunded"})).action == REFUND
    assert parse_generic_event(raw({**base, "status": "settled"})).action is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'"text"',
        b'{"id": NaN}',
        b'{"id": Infinity}',
        b"\xff\xfe{}",
        b'{"id": "evt\\u0000", "type": "charge.refunded", "data": {"object": {}}}',
        b'{"type": "payment_intent.succeeded", "data": {"object": {}}}',
        b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": {}}',
        b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"amount": 1.5}}}',
        b'{"id": "' + b"e" * 256 + b'", "type": "t", "data": {"object": {}}}',
    ],
)
def test_bodies_no_gateway_sends_are_malformed(body):
    with pytest.raises(MalformedEvent):
        parse_stripe_event(body)


def test_a_negative_amount_is_malformed():
    with pytest.raises(MalformedEvent):
        parse_paystack_event(
            raw({"event": "charge.success", "data": {"id": 1, "reference": "p", "amount": -5}})
        )


def test_nesting_deeper_than_python_parses_is_malformed_not_a_crash():
    with pytest.raises(MalformedEvent):
        parse_stripe_event(b"[" * 100_000 + b"]" * 100_000)
