"""Make-default raced from concurrent requests (real threads, separate connections): one default."""

import threading

import sqlalchemy as sa
import webtest
from sqlalchemy.orm import Session

from payportal.events.models import OutboxEvent
from payportal.payment_methods.models import PaymentMethod
from tests.factories import access_token, bearer, card_method_body, create_merchant

URL = "/api/v1/payment-methods"
ROUNDS = 10


def committed_merchant(engine, settings):
    with Session(engine, expire_on_commit=False) as session:
        merchant = create_merchant(session, settings)
        session.commit()
    return merchant, bearer(access_token(settings, merchant))


def race(wsgi_app, headers, requests):
    """Run each (method, url, body) in its own thread and app client, released together."""
    barrier = threading.Barrier(len(requests))
    responses = [None] * len(requests)

    def run(index, method, url, body):
        client = webtest.TestApp(wsgi_app, extra_environ={"HTTP_HOST": "localhost"})
        barrier.wait(timeout=10)
        if body is None:
            responses[index] = getattr(client, method)(url, headers=headers, expect_errors=True)
        else:
            responses[index] = getattr(client, method)(
                url, body, headers=headers, expect_errors=True
            )

    threads = [
        threading.Thread(target=run, args=(i, *request)) for i, request in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return responses


def default_ids(engine, merchant_id) -> list[str]:
    with engine.connect() as conn:
        return [
            str(i)
            for i in conn.scalars(
                sa.select(PaymentMethod.id).where(
                    PaymentMethod.merchant_id == merchant_id,
                    PaymentMethod.is_default,
                    PaymentMethod.deleted_at.is_(None),
                )
            )
        ]


def test_two_make_default_requests_leave_exactly_one_default(
    live_testapp, committed_db, settings, wsgi_app
):
    merchant, headers = committed_merchant(committed_db, settings)
    original, a, b = (
        live_testapp.post_json(URL, card_method_body(), headers=headers, status=201).json["id"]
        for _ in range(3)
    )
    assert default_ids(committed_db, merchant.id) == [original]
    for _ in range(ROUNDS):
        live_testapp.put(f"{URL}/{original}/default", headers=headers, status=200)
        responses = race(
            wsgi_app,
            headers,
            [("put", f"{URL}/{a}/default", None), ("put", f"{URL}/{b}/default", None)],
        )
        assert [r.status_int for r in responses] == [200, 200]
        [winner] = default_ids(committed_db, merchant.id)
        assert winner in {a, b}
        listed = live_testapp.get(URL, headers=headers).json["data"]
        assert [m["id"] for m in listed if m["is_default"]] == [winner]
    with committed_db.connect() as conn:
        events = conn.scalars(
            sa.select(OutboxEvent.data).where(OutboxEvent.type == "payment_method.updated")
        ).all()
    # The second request of each race saw the first one's default and moved it on: per round the
    # race sets two defaults and clears two, and every round after the first resets the original.
    moves = 2 * ROUNDS + (ROUNDS - 1)
    assert sum(1 for data in events if data["is_default"]) == moves
    assert sum(1 for data in events if not data["is_default"]) == moves


def test_concurrent_first_methods_make_exactly_one_default(
    live_testapp, committed_db, settings, wsgi_app
):
    merchant, headers = committed_merchant(committed_db, settings)
    responses = race(wsgi_app, headers, [("post_json", URL, card_method_body()) for _ in range(4)])
    assert [r.status_int for r in responses] == [201] * 4
    flagged = [r.json["id"] for r in responses if r.json["is_default"]]
    assert len(flagged) == 1
    assert default_ids(committed_db, merchant.id) == flagged
