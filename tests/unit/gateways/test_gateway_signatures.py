"""Signature schemes against fixed vectors (computed with openssl, outside this code base):
a payload, a secret, a timestamp and the header the gateway would send."""

from __future__ import annotations

import pytest

from payportal.gateways.signatures import (
    SignatureRejected,
    flutterwave_signature,
    generic_signature,
    paystack_signature,
    stripe_signature,
    verify_flutterwave_signature,
    verify_generic_signature,
    verify_paystack_signature,
    verify_stripe_signature,
)

PAYLOAD = (
    b'{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"payment_intent.succeeded"}'
)
TIMESTAMP = 1_700_000_000

STRIPE_SECRET = "whsec_test_vector_secret"
STRIPE_V1 = "7b77a4b9c2f49ad88aa68c316e85b38284f4b431a2ba823effce0b5a1f07662a"
GENERIC_SECRET = "sk_test_generic_vector_secret"
GENERIC_SIGNATURE = "sha256=741ce6afaa3f6162bc84b339b6338db54a663358514f1c03237d250ce98c56e9"
PAYSTACK_KEY = "sk_test_paystack_vector_key"
PAYSTACK_SIGNATURE = (
    "a7085b55b0fd79bc26d30e78dd338f69e75807d0899abf7a9c1ba9c17157b1eb"
    "927c68b7a7e93acfbe3d2f1e9dcbd3a944902d41d7703162976d94f190f91051"
)
FLUTTERWAVE_HASH = "flw_vector_hash"
FLUTTERWAVE_SIGNATURE = "isHI5hXenPd5P89b2LeE4y2PLa5RgNcrQS67Fn7fPMk="


def test_the_schemes_match_the_vectors():
    assert stripe_signature(STRIPE_SECRET, TIMESTAMP, PAYLOAD) == STRIPE_V1
    assert generic_signature(GENERIC_SECRET, str(TIMESTAMP), PAYLOAD) == GENERIC_SIGNATURE
    assert paystack_signature(PAYSTACK_KEY, PAYLOAD) == PAYSTACK_SIGNATURE
    assert flutterwave_signature(FLUTTERWAVE_HASH, PAYLOAD) == FLUTTERWAVE_SIGNATURE


def test_stripe_accepts_its_documented_header():
    header = f"t={TIMESTAMP},v1={STRIPE_V1},v0=0000"

    verify_stripe_signature(STRIPE_SECRET, header, PAYLOAD, now=TIMESTAMP + 299)


def test_stripe_accepts_any_matching_v1():
    header = f"t={TIMESTAMP},v1={'0' * 64},v1={STRIPE_V1}"

    verify_stripe_signature(STRIPE_SECRET, header, PAYLOAD, now=TIMESTAMP)


@pytest.mark.parametrize(
    ("header", "now"),
    [
        (f"t={TIMESTAMP},v1={STRIPE_V1}", TIMESTAMP + 301),  # too old
        (f"t={TIMESTAMP},v1={STRIPE_V1}", TIMESTAMP - 301),  # from the future
        (f"t={TIMESTAMP + 1},v1={STRIPE_V1}", TIMESTAMP),  # another timestamp
        (f"t={TIMESTAMP},v0={STRIPE_V1}", TIMESTAMP),  # no v1
        (f"v1={STRIPE_V1}", TIMESTAMP),  # no t
        (f"t={TIMESTAMP},t={TIMESTAMP},v1={STRIPE_V1}", TIMESTAMP),  # two t
        (f"t={TIMESTAMP},v1={STRIPE_V1.upper()}", TIMESTAMP),
        (f"t={TIMESTAMP},v1=é{STRIPE_V1[1:]}", TIMESTAMP),  # not even ASCII
        ("", TIMESTAMP),
        (None, TIMESTAMP),
    ],
)
def test_stripe_rejects(header, now):
    with pytest.raises(SignatureRejected):
        verify_stripe_signature(STRIPE_SECRET, header, PAYLOAD, now=now)


def test_stripe_rejects_a_changed_body():
    with pytest.raises(SignatureRejected):
        verify_stripe_signature(
            STRIPE_SECRET, f"t={TIMESTAMP},v1={STRIPE_V1}", PAYLOAD + b" ", now=TIMESTAMP
        )


def test_generic_accepts_within_the_window_both_ways():
    for now in (TIMESTAMP - 300, TIMESTAMP, TIMESTAMP + 300):
        verify_generic_signature(
            GENERIC_SECRET, str(TIMESTAMP), GENERIC_SIGNATURE, PAYLOAD, now=now
        )


@pytest.mark.parametrize(
    ("timestamp", "signature", "now"),
    [
        (str(TIMESTAMP), GENERIC_SIGNATURE, TIMESTAMP + 301),
        (str(TIMESTAMP), GENERIC_SIGNATURE, TIMESTAMP - 301),
        (str(TIMESTAMP), GENERIC_SIGNATURE.removeprefix("sha256="), TIMESTAMP),
        (str(TIMESTAMP), GENERIC_SIGNATURE[:-1] + "0", TIMESTAMP),
        ("1.7e9", GENERIC_SIGNATURE, TIMESTAMP),
        (None, GENERIC_SIGNATURE, TIMESTAMP),
        (str(TIMESTAMP), None, TIMESTAMP),
    ],
)
def test_generic_rejects(timestamp, signature, now):
    with pytest.raises(SignatureRejected):
        verify_generic_signature(GENERIC_SECRET, timestamp, signature, PAYLOAD, now=now)


def test_paystack():
    verify_paystack_signature(PAYSTACK_KEY, PAYSTACK_SIGNATURE, PAYLOAD)
    for wrong in (PAYSTACK_SIGNATURE[:-1] + "0", "", None, STRIPE_V1):
        with pytest.raises(SignatureRejected):
            verify_paystack_signature(PAYSTACK_KEY, wrong, PAYLOAD)
    with pytest.raises(SignatureRejected):
        verify_paystack_signature("another key", PAYSTACK_SIGNATURE, PAYLOAD)


def test_flutterwave_verif_hash_or_body_signature():
    verify_flutterwave_signature(FLUTTERWAVE_HASH, FLUTTERWAVE_HASH, None, PAYLOAD)
    verify_flutterwave_signature(FLUTTERWAVE_HASH, None, FLUTTERWAVE_SIGNATURE, PAYLOAD)
    cases = [
        ("flw_other_hash", None),
        (None, "isHI5hXenPd5P89b2LeE4y2PLa5RgNcrQS67Fn7fPMA="),
        (FLUTTERWAVE_HASH, "bm9wZQ=="),  # a body signature that is there must hold
        (None, None),
    ]
    for verif_hash, signature in cases:
        with pytest.raises(SignatureRejected):
            verify_flutterwave_signature(FLUTTERWAVE_HASH, verif_hash, signature, PAYLOAD)


def test_a_rejection_never_reveals_the_expected_value():
    with pytest.raises(SignatureRejected) as caught:
        verify_stripe_signature(
            STRIPE_SECRET, f"t={TIMESTAMP},v1={'0' * 64}", PAYLOAD, now=TIMESTAMP
        )

    assert STRIPE_V1 not in str(caught.value)
    assert caught.value.status == 401
