"""After-commit publishing: what a request commits reaches SQS once, with its attributes;
what rolls back never does; the request never waits for SQS."""

from __future__ import annotations

import time
import uuid

import sqlalchemy as sa

from payportal.events.models import OutboxEvent
from payportal.events.relay import Relay
from payportal.server import run_shutdown_hooks
from tests.factories import access_token, bearer, create_merchant


def _attributes(message) -> dict[str, str]:
    return {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}


def _events_of(session_factory, merchant_id) -> list[OutboxEvent]:
    with session_factory() as session:
        return list(
            session.execute(
                sa.select(OutboxEvent).where(OutboxEvent.merchant_id == merchant_id)
            ).scalars()
        )


def test_an_initialized_payment_sends_exactly_one_message_with_its_attributes(
    publishing_app, committed_merchant, receive_all, session_factory, settings
):
    headers = {
        **bearer(access_token(settings, committed_merchant)),
        "X-Correlation-ID": "checkout-42",
    }
    payment = publishing_app.testapp.post_json(
        "/api/v1/payments/initialize", {"amount": 1050, "currency": "USD"}, headers=headers
    ).json["payment"]
    assert publishing_app.publisher.wait_idle(10)

    [message] = receive_all(publishing_app.queue_url, expect=1)
    [event] = _events_of(session_factory, committed_merchant.id)
    assert message["Attributes"]["MessageGroupId"] == f"merchant-{committed_merchant.id}"
    assert message["Attributes"]["MessageDeduplicationId"] == str(event.id)
    assert _attributes(message) == {
        "eventType": "payment.initiated",
        "merchantId": str(committed_merchant.id),
        "paymentId": payment["id"],
        "timestamp": message["json"]["created_at"],
        "correlationId": "checkout-42",
    }
    # the body is the envelope, exactly as the events API shows the same event
    shown = publishing_app.testapp.get(f"/api/v1/events/{event.id}", headers=headers).json
    assert message["json"] == shown
    assert shown["correlation_id"] == "checkout-42"
    assert shown["data"] == payment
    assert event.published_at is not None


def test_a_request_that_fails_after_appending_sends_nothing(
    publishing_app, committed_merchant, receive_all, session_factory
):
    publishing_app.append(committed_merchant.id, count=3, fail=True, status=409)
    assert publishing_app.publisher.wait_idle(10)

    assert receive_all(publishing_app.queue_url) == []
    assert _events_of(session_factory, committed_merchant.id) == []


def test_a_pyramid_retry_publishes_the_final_attempt_once(
    publishing_app, committed_merchant, receive_all, session_factory, monkeypatch
):
    publisher = publishing_app.publisher
    handed_over: list[list[tuple[uuid.UUID, uuid.UUID]]] = []
    submit = publisher.submit

    def recording_submit(events):
        handed_over.append(list(events))
        submit(events)

    monkeypatch.setattr(publisher, "submit", recording_submit)

    response = publishing_app.append(committed_merchant.id, serialization_failures=1)
    assert response.json["attempt"] == 1  # the first attempt died of SQLSTATE 40001
    [event_id] = response.json["event_ids"]
    assert publisher.wait_idle(10)

    assert handed_over == [[(committed_merchant.id, uuid.UUID(event_id))]]
    messages = receive_all(publishing_app.queue_url, expect=1)
    assert [m["Attributes"]["MessageDeduplicationId"] for m in messages] == [event_id]
    assert [str(e.id) for e in _events_of(session_factory, committed_merchant.id)] == [event_id]


def test_several_events_of_one_request_go_in_one_hand_over(
    publishing_app, committed_merchant, receive_all, monkeypatch
):
    publisher = publishing_app.publisher
    handed_over: list[int] = []
    submit = publisher.submit
    monkeypatch.setattr(
        publisher, "submit", lambda ids: (handed_over.append(len(ids)), submit(ids))
    )

    response = publishing_app.append(committed_merchant.id, count=12)
    assert publisher.wait_idle(10)

    assert handed_over == [12]
    messages = receive_all(publishing_app.queue_url, expect=12)
    sent = [m["Attributes"]["MessageDeduplicationId"] for m in messages]
    assert sent == response.json["event_ids"]  # one merchant, one group: in commit order


def test_a_standard_queue_gets_the_message_without_fifo_ids(
    make_publishing_app, sqs, committed_merchant, receive_all
):
    queue_url = sqs.create_queue(QueueName=f"events-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    app = make_publishing_app(queue_url)

    [event_id] = app.append(committed_merchant.id).json["event_ids"]
    assert app.publisher.wait_idle(10)

    [message] = receive_all(queue_url, expect=1)
    assert message["json"]["id"] == event_id
    assert "MessageGroupId" not in message["Attributes"]
    assert "MessageDeduplicationId" not in message["Attributes"]
    assert _attributes(message)["eventType"] == "payment.initiated"


def test_sqs_down_payments_stay_fast_and_the_relay_delivers_every_event_later(
    publishing_app,
    committed_merchant,
    drain_queue,
    sqs_server,
    session_factory,
    unsent_count,
    settings,
):
    headers = bearer(access_token(settings, committed_merchant))
    sqs_server.stop()
    try:
        durations, references = [], set()
        for n in range(200):
            started = time.perf_counter()
            response = publishing_app.testapp.post_json(
                "/api/v1/payments/initialize",
                {"amount": 1000 + n, "currency": "USD"},
                headers=headers,
                status=201,
            )
            durations.append(time.perf_counter() - started)
            references.add(response.json["payment"]["reference"])
        assert publishing_app.publisher.wait_idle(60)
        # nothing reached SQS, and the outbox kept every event
        assert unsent_count() == 200
    finally:
        sqs_server.start()

    # waiting on SQS would cost each request boto3's retries (about 1.5 s with SQS refusing)
    durations.sort()
    median, p95 = durations[len(durations) // 2], durations[int(len(durations) * 0.95)]
    assert median < 0.25, f"median {median:.2f} s"
    assert p95 < 1.0, f"p95 {p95:.2f} s"

    drainer = drain_queue(publishing_app.queue_url)
    relay = Relay(session_factory, publishing_app.app.registry.payportal_settings)
    deadline = time.monotonic() + 60
    while unsent_count() and time.monotonic() < deadline:
        if not relay.step():
            time.sleep(0.2)

    assert unsent_count() == 0
    messages = drainer.finish(expect=200)
    with session_factory() as session:
        event_ids = {str(i) for i in session.scalars(sa.select(OutboxEvent.id))}
        attempts = session.scalars(sa.select(OutboxEvent.attempts)).all()
    sent = [m["Attributes"]["MessageDeduplicationId"] for m in messages]
    assert len(sent) == 200
    assert set(sent) == event_ids
    assert {m["json"]["data"]["reference"] for m in messages} == references
    assert max(attempts) >= 1  # the publisher did try, and recorded it


def test_readiness_reports_sqs(publishing_app, sqs_server):
    ready = publishing_app.testapp.get("/readyz").json
    assert ready["checks"]["sqs"] == "ok"

    sqs_server.stop()
    try:
        down = publishing_app.testapp.get("/readyz", status=503).json
    finally:
        sqs_server.start()
    assert down["status"] == "unavailable"
    assert down["checks"]["sqs"].startswith("failing")


def test_without_a_queue_events_are_recorded_and_nothing_is_published(testapp, wsgi_app):
    assert wsgi_app.registry.payportal_settings.sqs_queue_url is None
    assert not hasattr(wsgi_app.registry, "event_publisher")
    assert "sqs" not in testapp.get("/readyz").json["checks"]


def test_each_merchants_events_keep_their_commit_order_across_sender_lanes(
    publishing_app, session_factory, settings, receive_all
):
    with session_factory() as session, session.begin():
        merchants = [create_merchant(session, settings).id for _ in range(6)]
    appended: dict[str, list[str]] = {f"merchant-{m}": [] for m in merchants}
    for _round in range(4):
        for merchant_id in merchants:
            ids = publishing_app.append(merchant_id, count=3).json["event_ids"]
            appended[f"merchant-{merchant_id}"].extend(ids)
    assert publishing_app.publisher.wait_idle(30)

    received: dict[str, list[str]] = {group: [] for group in appended}
    for message in receive_all(publishing_app.queue_url, expect=72, timeout=30):
        attributes = message["Attributes"]
        received[attributes["MessageGroupId"]].append(attributes["MessageDeduplicationId"])
    assert received == appended


def test_a_graceful_stop_sends_what_is_queued_first(
    publishing_app, committed_merchant, receive_all, unsent_count
):
    event_ids = publishing_app.append(committed_merchant.id, count=30).json["event_ids"]

    run_shutdown_hooks(publishing_app.app)

    assert unsent_count() == 0
    messages = receive_all(publishing_app.queue_url, expect=30)
    assert [m["Attributes"]["MessageDeduplicationId"] for m in messages] == event_ids
