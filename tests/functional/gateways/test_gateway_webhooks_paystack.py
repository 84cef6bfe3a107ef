"""webhooks/paystack: the SHA-512 body signature, and charge, refund and dispute events."""

from __future__ import annotations

import hashlib
import hmac

from tests.functional.gateways.conftest import (
    GATEWAYS,
    PAYSTACK_SECRET,
    deliveries,
    encode,
    event_types,
    paystack_event,
    post_event,
    reload,
)

PAYSTACK = GATEWAYS["paystack"]


def test_a_signature_computed_as_paystack_documents_it_is_accepted(
    testapp, dbsession, merchant, make_payment
):
    # Paystack: x-paystack-signature = hex HMAC-SHA512 of the raw body, keyed with the secret key
    payment = make_payment(merchant[0], currency="NGN", amount=500_000)
    raw = encode(paystack_event(payment.reference, "completed", amount=500_000, object_id=3019))
    signature = hmac.new(PAYSTACK_SECRET.encode(), raw, hashlib.sha512).hexdigest()

    post_event(testapp, PAYSTACK, raw, headers={"x-paystack-signature": signature})

    payment = reload(dbsession, payment)
    assert (payment.status, payment.gateway_reference) == ("completed", "3019")
    assert deliveries(dbsession)[0].gateway_event_id == "charge.success:3019"


def test_the_fee_paystack_reports_is_the_gateway_fee(testapp, dbsession, merchant, make_payment):
    payment = make_payment(merchant[0], currency="NGN", amount=500_000)

    post_event(
        testapp,
        PAYSTACK,
        paystack_event(payment.reference, "completed", amount=500_000, fees=7_600),
    )

    payment = reload(dbsession, payment)
    assert payment.gateway_fee == 7_600
    # 2.9 % platform fee, no fixed NGN part in the test settings
    assert payment.net_amount == 500_000 - 14_500 - 7_600


def test_refund_processed_refunds_by_the_transaction_reference(
    testapp, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0], currency="NGN", amount=500_000, status="completed")
    # Paystack sends some refund amounts as strings of digits
    refund = paystack_event(payment.reference, "refunded", amount="200000", object_id=77)

    assert post_event(testapp, PAYSTACK, refund).json["outcome"] == "processed"

    payment = reload(dbsession, payment)
    assert (payment.status, payment.amount_refunded) == ("partially_refunded", 200_000)
    assert deliveries(dbsession)[0].gateway_event_id == "refund.processed:77"
    assert event_types(dbsession, payment) == ["payment.partially_refunded"]


def test_a_charge_and_a_refund_with_the_same_object_id_are_different_events(
    testapp, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0], currency="NGN", amount=500_000)
    post_event(
        testapp,
        PAYSTACK,
        paystack_event(payment.reference, "completed", amount=500_000, object_id=5),
    )

    refund = paystack_event(payment.reference, "refunded", amount=500_000, object_id=5)

    assert post_event(testapp, PAYSTACK, refund).json["outcome"] == "processed"
    assert reload(dbsession, payment).status == "refunded"


def test_a_dispute_finds_the_payment_through_its_transaction(
    testapp, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0], currency="NGN", amount=500_000, status="completed")
    body = {
        "event": "charge.dispute.create",
        "data": {
            "id": 358950,
            "currency": "NGN",
            "category": "chargeback",
            "transaction": {"id": 1, "reference": payment.reference, "amount": 500_000},
        },
    }

    assert post_event(testapp, PAYSTACK, body).json["outcome"] == "processed"

    assert reload(dbsession, payment).status == "disputed"


def test_an_upper_case_signature_is_the_same_signature(testapp, dbsession, merchant, make_payment):
    payment = make_payment(merchant[0], currency="NGN", amount=500_000)
    raw = encode(paystack_event(payment.reference, "completed", amount=500_000))
    signature = hmac.new(PAYSTACK_SECRET.encode(), raw, hashlib.sha512).hexdigest().upper()

    post_event(testapp, PAYSTACK, raw, headers={"x-paystack-signature": signature})

    assert reload(dbsession, payment).status == "completed"
