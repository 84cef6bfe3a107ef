"""webhooks/flutterwave: v3's verif-hash, v4's body signature, amounts in major units."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

from tests.functional.gateways.conftest import (
    FLUTTERWAVE_HASH,
    GATEWAYS,
    deliveries,
    encode,
    flutterwave_event,
    post_event,
    reload,
)

FLUTTERWAVE = GATEWAYS["flutterwave"]


def v4_event(reference: str, status: str = "succeeded", amount=100, currency="NGN") -> dict:
    return {
        "webhook_id": "wbk_1",
        "id": f"wbk_{uuid.uuid4().hex[:12]}",
        "type": "charge.completed",
        "data": {
            "id": "chg_8Tq1",
            "reference": reference,
            "amount": amount,
            "currency": currency,
            "status": status,
        },
    }


def test_a_v4_event_signed_as_flutterwave_documents_it_is_accepted(
    testapp, dbsession, merchant, make_payment
):
    # flutterwave-signature = base64 of HMAC-SHA256(secret hash, raw body)
    payment = make_payment(merchant[0], currency="NGN", amount=10_000)
    raw = encode(v4_event(payment.reference))
    digest = hmac.new(FLUTTERWAVE_HASH.encode(), raw, hashlib.sha256).digest()

    post_event(
        testapp,
        FLUTTERWAVE,
        raw,
        headers={"flutterwave-signature": base64.b64encode(digest).decode()},
    )

    payment = reload(dbsession, payment)
    assert (payment.status, payment.gateway_reference) == ("completed", "chg_8Tq1")


def test_a_wrong_v4_signature_is_401_even_with_a_good_verif_hash(
    testapp, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0], currency="NGN", amount=10_000)
    raw = encode(v4_event(payment.reference))
    headers = {"verif-hash": FLUTTERWAVE_HASH, "flutterwave-signature": "bm90IGl0"}

    post_event(testapp, FLUTTERWAVE, raw, status=401, headers=headers)

    assert reload(dbsession, payment).status == "pending"
    assert deliveries(dbsession) == []


def test_major_unit_amounts_convert_exactly(testapp, dbsession, merchant, make_payment):
    payment = make_payment(merchant[0], currency="NGN", amount=10_050)
    wrong = make_payment(merchant[0], currency="NGN", amount=10_049)
    raw = b'{"event":"charge.completed","data":{"id":%d,"tx_ref":"%s","amount":100.50,'
    raw += b'"currency":"NGN","status":"successful","app_fee":1.407}}'

    post_event(testapp, FLUTTERWAVE, raw % (1, payment.reference.encode()))
    post_event(testapp, FLUTTERWAVE, raw % (2, wrong.reference.encode()))

    payment = reload(dbsession, payment)
    assert (payment.status, payment.gateway_fee) == ("completed", 141)
    assert reload(dbsession, wrong).status == "pending"
    assert {d.outcome for d in deliveries(dbsession)} == {"processed", "mismatch"}


def test_a_zero_decimal_currency_needs_no_scaling(testapp, dbsession, merchant, make_payment):
    payment = make_payment(merchant[0], currency="JPY", amount=500)

    post_event(
        testapp,
        FLUTTERWAVE,
        flutterwave_event(payment.reference, "completed", amount=500, currency="JPY"),
    )

    assert reload(dbsession, payment).status == "completed"


def test_a_status_that_is_not_final_is_ignored_and_the_final_one_still_applies(
    testapp, dbsession, merchant, make_payment
):
    payment = make_payment(merchant[0], currency="NGN", amount=10_000)
    pending = flutterwave_event(payment.reference, "completed", object_id=41)
    pending["data"]["status"] = "pending"

    assert post_event(testapp, FLUTTERWAVE, pending).json["outcome"] == "ignored"
    done = flutterwave_event(payment.reference, "completed", object_id=41)

    assert post_event(testapp, FLUTTERWAVE, done).json["outcome"] == "processed"
    assert reload(dbsession, payment).status == "completed"
