"""Gateways do not promise order: every arrival order of the same events ends in the same state,
early updates wait (parked) for the transition they need, and nothing leaves a terminal state."""

from __future__ import annotations

import itertools

import pytest

from payportal.payments.state import TERMINAL, apply_transition, lock_payment
from tests.functional.gateways.conftest import (
    GATEWAYS,
    deliveries,
    event_types,
    generic_event,
    post_event,
    reload,
    stripe_event,
    transitions,
)

AMOUNT = 10_000


def lifecycle_events(gateway_name: str, reference: str) -> dict[str, dict]:
    """processing, completed and a full refund of one payment, as the gateway would send them."""
    if gateway_name == "stripe":
        return {
            status: stripe_event(reference, status, amount=AMOUNT)
            for status in ("processing", "completed", "refunded")
        }
    return {
        "processing": generic_event(reference, "processing"),
        "completed": generic_event(reference, "completed"),
        "refunded": generic_event(
            reference, "refunded", data={"refund_amount": AMOUNT, "refund_id": "rf_1"}
        ),
    }


@pytest.mark.parametrize("gateway_name", ["generic", "stripe"])
@pytest.mark.parametrize(
    "order", list(itertools.permutations(["processing", "completed", "refunded"]))
)
def test_every_arrival_order_ends_refunded_without_leaving_a_terminal_state(
    testapp, dbsession, merchant, make_payment, gateway_name, order
):
    gateway = GATEWAYS[gateway_name]
    payment = make_payment(merchant[0], amount=AMOUNT)
    events = lifecycle_events(gateway_name, payment.reference)

    outcomes = [post_event(testapp, gateway, events[status]).json["outcome"] for status in order]

    payment = reload(dbsession, payment)
    assert (payment.status, payment.amount_refunded) == ("refunded", AMOUNT)
    history = transitions(dbsession, payment)
    assert not [t for t in history if t[0] is not None and t[0] in TERMINAL]
    assert history[-1][1:] == ("refunded", f"webhook:{gateway_name}")
    assert event_types(dbsession, payment).count("payment.refunded") == 1
    assert event_types(dbsession, payment).count("payment.completed") == 1
    assert set(outcomes) <= {"processed", "parked", "ignored"}
    assert [d.outcome for d in deliveries(dbsession) if d.outcome == "parked"] == []
    # a refund that came before the completion waited for it, then went through
    if order.index("refunded") < order.index("completed"):
        assert outcomes[order.index("refunded")] == "parked"


def test_a_refund_before_the_completion_is_parked_then_applied_by_it(
    testapp, dbsession, merchant, make_payment
):
    gateway = GATEWAYS["stripe"]
    payment = make_payment(merchant[0], amount=AMOUNT)
    refund = stripe_event(payment.reference, "refunded", amount=AMOUNT, refunded=2_500)

    assert post_event(testapp, gateway, refund).json["outcome"] == "parked"
    assert reload(dbsession, payment).status == "pending"
    (parked,) = deliveries(dbsession)
    assert (parked.outcome, parked.payment_id, parked.processed_at) == ("parked", payment.id, None)

    completion = stripe_event(payment.reference, "completed", amount=AMOUNT)
    assert post_event(testapp, gateway, completion).json["outcome"] == "processed"

    payment = reload(dbsession, payment)
    assert (payment.status, payment.amount_refunded) == ("partially_refunded", 2_500)
    assert [t[1] for t in transitions(dbsession, payment)] == [
        "pending",
        "completed",
        "partially_refunded",
    ]
    assert {d.outcome for d in deliveries(dbsession)} == {"processed"}


def test_a_parked_update_applies_after_a_transition_made_by_any_path(
    testapp, dbsession, merchant, make_payment, settings
):
    payment = make_payment(merchant[0], amount=AMOUNT)
    dispute = generic_event(payment.reference, "disputed")
    assert post_event(testapp, GATEWAYS["generic"], dispute).json["outcome"] == "parked"

    # the payment completes through the state machine directly (an API call would do the same)
    locked = lock_payment(dbsession, payment_id=payment.id)
    apply_transition(dbsession, locked, "completed", source="api", settings=settings)

    assert reload(dbsession, payment).status == "disputed"
    assert transitions(dbsession, payment)[-1] == ("completed", "disputed", "webhook:generic")
    assert deliveries(dbsession)[0].outcome == "processed"


def test_a_parked_update_that_can_no_longer_apply_becomes_ignored(
    testapp, dbsession, merchant, make_payment
):
    gateway = GATEWAYS["generic"]
    payment = make_payment(merchant[0], amount=AMOUNT)
    post_event(testapp, gateway, generic_event(payment.reference, "refunded"))

    post_event(testapp, gateway, generic_event(payment.reference, "failed"))

    payment = reload(dbsession, payment)
    assert (payment.status, payment.amount_refunded) == ("failed", 0)
    refund = next(d for d in deliveries(dbsession) if d.target_status == "refunded")
    assert refund.outcome == "ignored"
    assert refund.outcome_detail == "a failed payment cannot be refunded"
    assert refund.processed_at is not None


def test_processing_after_completed_is_ignored(testapp, dbsession, merchant, make_payment):
    gateway = GATEWAYS["stripe"]
    payment = make_payment(merchant[0], amount=AMOUNT)
    post_event(testapp, gateway, stripe_event(payment.reference, "completed", amount=AMOUNT))

    late = post_event(
        testapp, gateway, stripe_event(payment.reference, "processing", amount=AMOUNT)
    )

    assert late.json["outcome"] == "ignored"
    assert reload(dbsession, payment).status == "completed"
    assert event_types(dbsession, payment) == ["payment.completed"]


def test_parked_updates_apply_in_the_order_they_arrived(testapp, dbsession, merchant, make_payment):
    gateway = GATEWAYS["generic"]
    payment = make_payment(merchant[0], amount=AMOUNT)
    first = generic_event(
        payment.reference, "partially_refunded", data={"refund_amount": 1_000, "refund_id": "a"}
    )
    second = generic_event(
        payment.reference, "partially_refunded", data={"refund_amount": 2_000, "refund_id": "b"}
    )
    third = generic_event(payment.reference, "refunded", data={"refund_id": "c"})
    for body in (first, second, third):
        assert post_event(testapp, gateway, body).json["outcome"] == "parked"

    post_event(testapp, gateway, generic_event(payment.reference, "completed"))

    payment = reload(dbsession, payment)
    assert (payment.status, payment.amount_refunded) == ("refunded", AMOUNT)
    assert [t[1] for t in transitions(dbsession, payment)] == [
        "pending",
        "completed",
        "partially_refunded",
        "partially_refunded",
        "refunded",
    ]
