"""webhooks/stripe: Stripe-Signature exactly as Stripe signs, and each Stripe event's effect."""

from __future__ import annotations

import hashlib
import hmac
import time

from tests.functional.gateways.conftest import (
    GATEWAYS,
    STRIPE_SECRET,
    deliveries,
    encode,
    event_types,
    post_event,
    reload,
    sign_stripe,
    stripe_event,
    transitions,
)

STRIPE = GATEWAYS["stripe"]


def v1(raw: bytes, timestamp: int, secret: str = STRIPE_SECRET) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()


def test_a_header_built_as_stripe_documents_it_is_accepted(
    testapp, dbsession, merchant, make_payment
):
    # Stripe: signed_payload = "{t}.{raw body}"; v1 = hex HMAC-SHA256(endpoint secret, payload)
    payment = make_payment(merchant[0])
    raw = encode(stripe_event(payment.reference, "completed"))
    now = int(time.time())
    header = f"t={now},v1={v1(raw, now)},v0=6ffbb59b2300aae63f272406069a9788598b792a"

    post_event(testapp, STRIPE, raw, headers={"Stripe-Signature": header})

    payment = reload(dbsession, payment)
    assert (payment.status, payment.gateway_reference) == ("completed", "pi_3Test")


def test_any_v1_may_match_as_while_stripe_rolls_a_secret(
    testapp, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0])
    raw = encode(stripe_event(payment.reference, "completed"))
    now = int(time.time())
    old = v1(raw, now, "whsec_the_secret_being_rolled_out")
    header = f"t={now},v1={old},v1={v1(raw, now)}"

    post_event(testapp, STRIPE, raw, headers={"Stripe-Signature": header})

    assert reload(dbsession, payment).status == "completed"


def test_a_v0_signature_alone_is_not_enough(testapp, dbsession, merchant, make_payment):
    payment = make_payment(merchant[0])
    raw = encode(stripe_event(payment.reference, "completed"))
    now = int(time.time())

    post_event(
        testapp, STRIPE, raw, status=401, headers={"Stripe-Signature": f"t={now},v0={v1(raw, now)}"}
    )

    assert reload(dbsession, payment).status == "pending"


def test_a_stale_timestamp_is_401(testapp, dbsession, merchant, make_payment):
    payment = make_payment(merchant[0])
    raw = encode(stripe_event(payment.reference, "completed"))

    response = post_event(
        testapp, STRIPE, raw, status=401, headers=sign_stripe(raw, timestamp=int(time.time()) - 301)
    )

    assert "300 seconds" in response.json["error"]["message"]
    assert reload(dbsession, payment).status == "pending"
    assert deliveries(dbsession) == []


def test_a_signature_replayed_under_a_fresh_timestamp_is_401(
    testapp, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0])
    raw = encode(stripe_event(payment.reference, "completed"))
    old = int(time.time()) - 1000
    header = f"t={int(time.time())},v1={v1(raw, old)}"

    post_event(testapp, STRIPE, raw, status=401, headers={"Stripe-Signature": header})

    assert reload(dbsession, payment).status == "pending"


def test_charge_refunded_reports_the_running_total(testapp, dbsession, merchant, make_payment):
    payment = make_payment(merchant[0], amount=10_000, status="completed")
    first = stripe_event(payment.reference, "refunded", refunded=4_000)
    second = stripe_event(payment.reference, "refunded", refunded=10_000)

    assert post_event(testapp, STRIPE, first).json["outcome"] == "processed"
    assert reload(dbsession, payment).amount_refunded == 4_000
    assert post_event(testapp, STRIPE, second).json["outcome"] == "processed"

    payment = reload(dbsession, payment)
    assert (payment.status, payment.amount_refunded) == ("refunded", 10_000)
    assert event_types(dbsession, payment) == ["payment.partially_refunded", "payment.refunded"]


def test_a_late_refund_total_below_what_is_refunded_changes_nothing(
    testapp, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0], amount=10_000, status="completed")
    post_event(testapp, STRIPE, stripe_event(payment.reference, "refunded", refunded=6_000))

    late = post_event(testapp, STRIPE, stripe_event(payment.reference, "refunded", refunded=2_000))

    assert late.json["outcome"] == "ignored"
    assert reload(dbsession, payment).amount_refunded == 6_000


def test_cancel_and_dispute(testapp, dbsession, merchant, make_payment):
    pending = make_payment(merchant[0])
    completed = make_payment(merchant[0], status="completed")

    post_event(
        testapp,
        STRIPE,
        stripe_event(pending.reference, "cancelled", cancellation_reason="abandoned"),
    )
    post_event(testapp, STRIPE, stripe_event(completed.reference, "disputed", amount=5_000))

    assert reload(dbsession, pending).status == "cancelled"
    assert transitions(dbsession, pending)[-1] == ("pending", "cancelled", "webhook:stripe")
    assert reload(dbsession, completed).status == "disputed"


def test_an_event_type_payportal_does_not_act_on_is_recorded_and_ignored(
    testapp, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0])
    body = stripe_event(payment.reference, "completed")
    body["type"] = "payment_intent.created"

    assert post_event(testapp, STRIPE, body).json["outcome"] == "ignored"

    (delivery,) = deliveries(dbsession)
    assert (delivery.event_type, delivery.outcome) == ("payment_intent.created", "ignored")
    assert reload(dbsession, payment).status == "pending"


def test_the_event_id_is_what_makes_a_duplicate(testapp, dbsession, merchant, make_payment):
    payment = make_payment(merchant[0], status="completed")
    body = stripe_event(payment.reference, "refunded", refunded=1_000, event_id="evt_1Same")
    post_event(testapp, STRIPE, body)
    body["data"]["object"]["amount_refunded"] = 5_000

    assert post_event(testapp, STRIPE, body).json["outcome"] == "duplicate"
    assert reload(dbsession, payment).amount_refunded == 1_000


def test_a_charge_without_our_metadata_is_matched_by_its_payment_intent(
    testapp, dbsession, merchant, make_payment
):
    # Stripe keeps our metadata on the payment intent; its charges and disputes name the intent
    payment = make_payment(merchant[0], amount=10_000, gateway="stripe")
    post_event(testapp, STRIPE, stripe_event(payment.reference, "completed"))
    refund = stripe_event(payment.reference, "refunded", refunded=10_000)
    del refund["data"]["object"]["metadata"]

    assert post_event(testapp, STRIPE, refund).json["outcome"] == "processed"

    assert reload(dbsession, payment).status == "refunded"
    assert deliveries(dbsession)[-1].payment_id == payment.id


def test_a_payment_intent_match_needs_a_payment_of_that_gateway(
    testapp, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0], gateway="paystack", gateway_reference="pi_3Test")
    dispute = stripe_event(payment.reference, "disputed", payment_intent="pi_3Test")
    del dispute["data"]["object"]["metadata"]

    assert post_event(testapp, STRIPE, dispute).json["outcome"] == "ignored"
    assert reload(dbsession, payment).status == "pending"
