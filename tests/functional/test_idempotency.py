"""Idempotency-Key on POST: a retry replays the first response and does nothing else."""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
import sqlalchemy as sa
import webtest
from sqlalchemy.orm import Session

from payportal.events.models import OutboxEvent
from payportal.idempotency import IdempotencyKey
from payportal.payments.models import Payment, Refund
from tests.factories import (
    access_token,
    bearer,
    create_api_key,
    create_merchant,
    create_payment,
    merchant_headers,
)

INITIALIZE = "/api/v1/payments/initialize"
BODY = {"amount": 2_500, "currency": "EUR", "description": "Order 77"}


def _count(session, model, merchant_id) -> int:
    return session.scalar(
        sa.select(sa.func.count()).select_from(model).where(model.merchant_id == merchant_id)
    )


def _post(testapp, headers, key, body=BODY, status=201, path=INITIALIZE):
    return testapp.post_json(path, body, headers={**headers, "Idempotency-Key": key}, status=status)


@pytest.fixture
def merchant(dbsession, settings):
    return merchant_headers(dbsession, settings)


def test_a_retry_replays_the_first_response_byte_for_byte(testapp, dbsession, merchant):
    m, headers = merchant
    first = _post(testapp, headers, "order-77")
    # the same JSON with other key order and spacing is the same request
    again = testapp.post(
        INITIALIZE,
        json.dumps(dict(reversed(BODY.items())), indent=2),
        headers={**headers, "Idempotency-Key": "order-77", "Content-Type": "application/json"},
        status=201,
    )
    assert again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _count(dbsession, Payment, m.id) == 1
    assert _count(dbsession, OutboxEvent, m.id) == 1


def test_the_key_works_the_same_for_an_api_key_of_the_merchant(testapp, dbsession, merchant):
    m, headers = merchant
    first = _post(testapp, headers, "k1")
    _row, key = create_api_key(dbsession, m)
    again = _post(testapp, bearer(key), "k1")
    assert again.body == first.body
    assert _count(dbsession, Payment, m.id) == 1


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({**BODY, "amount": 2_501}, INITIALIZE),
        ({**BODY, "description": "Order 78"}, INITIALIZE),
        ({"amount": 2_500, "currency": "EUR"}, INITIALIZE),
    ],
)
def test_the_same_key_with_another_body_is_422_and_creates_nothing(
    testapp, dbsession, merchant, body, path
):
    m, headers = merchant
    _post(testapp, headers, "order-77")
    r = _post(testapp, headers, "order-77", body=body, status=422, path=path)
    assert (r.json["error"]["type"], r.json["error"]["code"]) == (
        "validation_error",
        "idempotency_key_reused",
    )
    assert _count(dbsession, Payment, m.id) == 1
    assert _count(dbsession, OutboxEvent, m.id) == 1


def test_the_same_key_on_another_endpoint_is_422(testapp, dbsession, settings, merchant):
    m, headers = merchant
    payment = create_payment(dbsession, settings, m, status="completed")
    refunds = f"/api/v1/payments/{payment.reference}/refunds"
    _post(testapp, headers, "shared", body={}, path=refunds)
    r = _post(testapp, headers, "shared", status=422)
    assert r.json["error"]["code"] == "idempotency_key_reused"
    assert _count(dbsession, Refund, m.id) == 1
    assert _count(dbsession, Payment, m.id) == 1


def test_keys_belong_to_one_merchant(testapp, dbsession, settings, merchant):
    m, headers = merchant
    other, other_headers = merchant_headers(dbsession, settings)
    mine = _post(testapp, headers, "order-77").json["payment"]
    theirs = _post(testapp, other_headers, "order-77").json["payment"]
    assert mine["reference"] != theirs["reference"]
    assert (_count(dbsession, Payment, m.id), _count(dbsession, Payment, other.id)) == (1, 1)


@pytest.mark.parametrize(
    "refused",
    [
        {"amount": 0, "currency": "EUR"},  # fails request validation
        {**BODY, "amount": 100_000_000_000},  # fails the service's bound
        {**BODY, "payment_method_id": "00000000-0000-0000-0000-000000000000"},  # no such method
    ],
)
def test_a_refused_request_leaves_no_key_behind(testapp, dbsession, merchant, refused):
    m, headers = merchant
    _post(testapp, headers, "retry-me", body=refused, status=422)
    assert dbsession.scalar(sa.select(sa.func.count()).select_from(IdempotencyKey)) == 0
    fixed = _post(testapp, headers, "retry-me")  # the corrected retry is new work, not "reused"
    assert "Idempotent-Replayed" not in fixed.headers
    assert _count(dbsession, Payment, m.id) == 1


def test_a_refused_refund_leaves_no_key_behind(testapp, dbsession, settings, merchant):
    m, headers = merchant
    payment = create_payment(dbsession, settings, m, status="completed", amount=1_000)
    refunds = f"/api/v1/payments/{payment.reference}/refunds"
    _post(testapp, headers, "refund-1", body={"amount": 5_000}, path=refunds, status=422)
    first = _post(testapp, headers, "refund-1", body={"amount": 400}, path=refunds)
    again = _post(testapp, headers, "refund-1", body={"amount": 400}, path=refunds)
    assert again.body == first.body
    assert _count(dbsession, Refund, m.id) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\tkey"])
def test_a_malformed_key_is_400(testapp, dbsession, merchant, key):
    m, headers = merchant
    r = testapp.post_json(
        INITIALIZE, BODY, headers={**headers, "Idempotency-Key": key}, status=(400, 422)
    )
    assert r.status_int == 400
    assert r.json["error"]["code"] == "invalid_idempotency_key"
    assert _count(dbsession, Payment, m.id) == 0


def _committed_merchant(engine, settings):
    with Session(engine, expire_on_commit=False) as session, session.begin():
        merchant = create_merchant(session, settings)
    return merchant, bearer(access_token(settings, merchant))


def test_ten_concurrent_initializations_with_one_key_make_one_payment(
    wsgi_app, committed_db, settings
):
    merchant, headers = _committed_merchant(committed_db, settings)
    barrier = threading.Barrier(10)
    responses, errors = [], []

    def initialize():
        app = webtest.TestApp(wsgi_app, extra_environ={"HTTP_HOST": "localhost"})
        try:
            barrier.wait(timeout=30)
            responses.append(_post(app, headers, "once-only", status="*"))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=initialize) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    statuses = Counter(r.status_int for r in responses)
    # a duplicate waits for the first and replays it (or, after 5 s, answers 409 in_use)
    assert set(statuses) <= {201, 409} and statuses[201] >= 1, statuses
    assert len({r.body for r in responses if r.status_int == 201}) == 1
    assert all(
        r.json["error"]["code"] == "idempotency_key_in_use"
        for r in responses
        if r.status_int == 409
    )
    with Session(committed_db) as session:
        assert _count(session, Payment, merchant.id) == 1
        assert _count(session, OutboxEvent, merchant.id) == 1


def test_a_duplicate_of_a_request_still_running_is_409_in_use(live_testapp, committed_db, settings):
    merchant, headers = _committed_merchant(committed_db, settings)
    with committed_db.connect() as first:
        # the first request has claimed the key and not committed yet
        first.execute(
            sa.insert(IdempotencyKey).values(
                merchant_id=merchant.id,
                key="slow",
                request_method="POST",
                request_path=INITIALIZE,
                fingerprint="0" * 64,
            )
        )
        r = _post(live_testapp, headers, "slow", status=409)
        first.rollback()
    assert r.json["error"]["code"] == "idempotency_key_in_use"
    with Session(committed_db) as session:
        assert _count(session, Payment, merchant.id) == 0
    # once the first is gone (rolled back), the retry does the work
    _post(live_testapp, headers, "slow")
