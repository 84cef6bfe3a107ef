"""Deliveries to a real local HTTP receiver: signed as documented, retried on 5xx/408/429 and
network errors, given up on other 4xx and after three days, every attempt listed."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from payportal.events.delivery import RetryPolicy, WebhookWorker, fan_out_events
from payportal.events.models import WebhookDelivery
from payportal.events.services import append_event
from tests.factories import access_token, bearer, create_merchant

ROOT = Path(__file__).resolve().parents[3]
API = "/api/v1/webhook-endpoints"
FAST_RETRIES = RetryPolicy(first_seconds=0.05, cap_seconds=0.2)


@pytest.fixture
def owner_headers(settings, committed_merchant):
    return bearer(access_token(settings, committed_merchant))


@pytest.fixture
def add_endpoint(live_testapp, owner_headers):
    """add_endpoint(url, events=["*"]) -> the created endpoint (with its one-time secret)."""

    def add(url: str, events=("*",), headers=None) -> dict:
        return live_testapp.post_json(
            API, {"url": url, "events": list(events)}, headers=headers or owner_headers
        ).json

    return add


@pytest.fixture
def append(session_factory, committed_merchant):
    """append(type) -> the id of an event committed by a service transaction."""

    def add(type: str = "payment.completed", merchant_id=None) -> uuid.UUID:
        with session_factory() as session, session.begin():
            event = append_event(
                session,
                merchant_id=merchant_id or committed_merchant.id,
                type=type,
                data={"reference": "pay_abc", "amount": 1050, "status": "completed"},
                payment_id=uuid.uuid4(),
                correlation_id="corr-delivery",
            )
        return event.id

    return add


@pytest.fixture
def worker(session_factory, settings, wsgi_app):
    return WebhookWorker(session_factory, settings, wsgi_app.registry.keyring, policy=FAST_RETRIES)


def run_until(worker, done, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        if not worker.step():
            time.sleep(0.05)
    assert done()


def deliveries(live_testapp, headers, endpoint_id) -> list[dict]:
    return live_testapp.get(f"{API}/{endpoint_id}/deliveries", headers=headers).json["data"]


def test_a_delivery_is_signed_as_documented(
    receiver, add_endpoint, append, worker, live_testapp, owner_headers
):
    endpoint = add_endpoint(f"{receiver.url}/hooks?source=payportal")
    event_id = append()

    run_until(worker, lambda: receiver.requests)

    [request] = receiver.requests
    assert request.path == "/hooks?source=payportal"
    assert request.headers["Content-Type"] == "application/json"
    scheme = dict(part.split("=", 1) for part in request.headers["Payportal-Signature"].split(","))
    expected = hmac.new(
        endpoint["secret"].encode(),
        scheme["t"].encode() + b"." + request.body,
        hashlib.sha256,
    ).hexdigest()
    assert hmac.compare_digest(scheme["v1"], expected)
    assert abs(int(scheme["t"]) - request.received_at) < 60
    assert request.headers["X-Correlation-ID"] == "corr-delivery"
    assert request.headers["Payportal-Event-Id"] == str(event_id)
    # the body is the envelope, exactly as the events API shows the same event
    shown = live_testapp.get(f"/api/v1/events/{event_id}", headers=owner_headers).json
    assert json.loads(request.body) == shown

    [delivery] = deliveries(live_testapp, owner_headers, endpoint["id"])
    assert delivery["status"] == "succeeded"
    assert delivery["event_id"] == str(event_id)
    assert delivery["attempt_count"] == 1
    assert delivery["delivered_at"] is not None
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] == 200
    assert attempt["latency_ms"] >= 0
    assert attempt["error"] is None and attempt["next_retry_at"] is None


def test_a_receiver_failing_twice_then_succeeding_gets_three_attempts(
    receiver, add_endpoint, append, worker, live_testapp, owner_headers
):
    endpoint = add_endpoint(receiver.url)
    receiver.script(503, 429)
    append()

    run_until(worker, lambda: len(receiver.requests) >= 3)
    time.sleep(0.3)
    worker.step()

    assert len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1  # the same event each time
    [delivery] = deliveries(live_testapp, owner_headers, endpoint["id"])
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [503, 429, 200]
    assert [a["error"] for a in delivery["attempts"]] == ["HTTP 503", "HTTP 429", None]
    assert all(a["next_retry_at"] for a in delivery["attempts"][:2])


@pytest.mark.parametrize("status", [408, 500, 502])
def test_timeouts_and_server_errors_are_retried(
    receiver, add_endpoint, append, worker, live_testapp, owner_headers, status
):
    endpoint = add_endpoint(receiver.url)
    receiver.script(status)
    append()

    run_until(worker, lambda: len(receiver.requests) >= 2)

    [delivery] = deliveries(live_testapp, owner_headers, endpoint["id"])
    assert [a["status_code"] for a in delivery["attempts"]] == [status, 200]


@pytest.mark.parametrize("status", [410, 400, 404, 302])
def test_other_answers_fail_at_once_and_are_not_retried(
    receiver, add_endpoint, append, worker, live_testapp, owner_headers, status
):
    endpoint = add_endpoint(receiver.url)
    receiver.script(status)
    append()

    run_until(worker, lambda: receiver.requests)
    for _ in range(5):
        worker.step()
        time.sleep(0.05)

    assert [r.path for r in receiver.requests] == ["/"]  # a redirect is not followed either
    [delivery] = deliveries(live_testapp, owner_headers, endpoint["id"])
    assert delivery["status"] == "failed"
    assert delivery["next_attempt_at"] is None
    assert [a["status_code"] for a in delivery["attempts"]] == [status]


def test_a_network_error_is_retried_with_the_error_recorded(
    add_endpoint, append, worker, live_testapp, owner_headers
):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    endpoint = add_endpoint(f"http://127.0.0.1:{closed_port}/hook")
    append()

    worker.step()

    [delivery] = deliveries(live_testapp, owner_headers, endpoint["id"])
    assert delivery["status"] == "pending"
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] is None
    assert "ConnectionRefusedError" in attempt["error"]
    assert attempt["next_retry_at"] is not None


def test_retries_stop_three_days_after_the_event(
    receiver, add_endpoint, append, worker, session_factory, live_testapp, owner_headers
):
    endpoint = add_endpoint(receiver.url)
    append()
    with session_factory() as session, session.begin():
        fan_out_events(session, 10)
        # the event is (almost) three days old: the next retry would fall past the window
        session.execute(
            sa.update(WebhookDelivery).values(
                created_at=sa.func.now() - worker.policy.window + dt.timedelta(seconds=0.01)
            )
        )
    receiver.script(503)

    worker.step()

    [delivery] = deliveries(live_testapp, owner_headers, endpoint["id"])
    assert delivery["status"] == "failed"
    assert [a["status_code"] for a in delivery["attempts"]] == [503]
    assert delivery["attempts"][0]["next_retry_at"] is None


def test_loopback_is_refused_at_delivery_time_when_the_setting_is_off(
    receiver, add_endpoint, append, session_factory, settings, wsgi_app, live_testapp, owner_headers
):
    # created while allowed (as if DNS pointed elsewhere then), delivered under the strict rule
    endpoint = add_endpoint(receiver.url)
    append()
    strict = settings.model_copy(update={"webhook_allow_private": False})
    WebhookWorker(session_factory, strict, wsgi_app.registry.keyring, policy=FAST_RETRIES).step()

    assert receiver.requests == []
    [delivery] = deliveries(live_testapp, owner_headers, endpoint["id"])
    assert delivery["status"] == "failed"
    assert "not public" in delivery["attempts"][0]["error"]


def test_events_reach_only_enabled_subscribed_endpoints(
    receiver, add_endpoint, append, worker, live_testapp, owner_headers
):
    completed_only = add_endpoint(f"{receiver.url}/completed", events=["payment.completed"])
    everything = add_endpoint(f"{receiver.url}/all")
    disabled = add_endpoint(f"{receiver.url}/disabled")
    live_testapp.patch_json(f"{API}/{disabled['id']}", {"enabled": False}, headers=owner_headers)
    append("payment.initiated")
    append("payment.completed")

    run_until(worker, lambda: len(receiver.requests) >= 3)
    worker.step()

    assert sorted(r.path for r in receiver.requests) == ["/all", "/all", "/completed"]
    assert len(deliveries(live_testapp, owner_headers, completed_only["id"])) == 1
    assert len(deliveries(live_testapp, owner_headers, everything["id"])) == 2
    assert deliveries(live_testapp, owner_headers, disabled["id"]) == []


def test_retry_sends_a_delivery_again_now(
    receiver, add_endpoint, append, worker, live_testapp, owner_headers
):
    endpoint = add_endpoint(receiver.url)
    receiver.script(410)
    append()
    run_until(worker, lambda: receiver.requests)
    [failed] = deliveries(live_testapp, owner_headers, endpoint["id"])
    assert failed["status"] == "failed"

    retried = live_testapp.post(
        f"{API}/{endpoint['id']}/deliveries/{failed['id']}/retry", headers=owner_headers
    ).json

    assert len(receiver.requests) == 2
    assert retried["status"] == "succeeded"
    assert retried["attempt_count"] == 2
    assert [a["status_code"] for a in retried["attempts"]] == [410, 200]


def test_another_merchants_deliveries_are_not_found(
    receiver,
    add_endpoint,
    append,
    worker,
    live_testapp,
    owner_headers,
    session_factory,
    settings,
):
    endpoint = add_endpoint(receiver.url)
    append()
    run_until(worker, lambda: receiver.requests)
    [delivery] = deliveries(live_testapp, owner_headers, endpoint["id"])
    with session_factory() as session, session.begin():
        other = create_merchant(session, settings)
    other_headers = bearer(access_token(settings, other))
    other_endpoint = add_endpoint(receiver.url, headers=other_headers)

    live_testapp.get(f"{API}/{endpoint['id']}/deliveries", headers=other_headers, status=404)
    retry = f"{API}/{endpoint['id']}/deliveries/{delivery['id']}/retry"
    live_testapp.post(retry, headers=other_headers, status=404)
    # the right delivery id under the other merchant's own endpoint is not found either
    crossed = f"{API}/{other_endpoint['id']}/deliveries/{delivery['id']}/retry"
    live_testapp.post(crossed, headers=other_headers, status=404)
    assert len(receiver.requests) == 1


def test_two_workers_deliver_each_delivery_once(
    receiver, add_endpoint, append, session_factory, settings, wsgi_app, committed_db
):
    add_endpoint(receiver.url)
    event_ids = {str(append()) for _ in range(40)}
    barrier = threading.Barrier(2)

    def run() -> None:
        engine = sa.create_engine(committed_db.url, pool_size=2)
        try:
            worker = WebhookWorker(
                sessionmaker(bind=engine, expire_on_commit=False),
                settings,
                wsgi_app.registry.keyring,
                delivery_batch=5,
            )
            barrier.wait(timeout=10)
            while worker.step():
                pass
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    delivered = [r.headers["Payportal-Event-Id"] for r in receiver.requests]
    assert sorted(delivered) == sorted(event_ids)


def test_the_worker_process_delivers_once_and_exits(
    receiver, add_endpoint, append, database_url, settings
):
    add_endpoint(receiver.url)
    event_id = append()
    result = subprocess.run(
        [str(Path(sys.executable).with_name("payportal-worker")), "development.ini", "--once"],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "ENCRYPTION_KEY": settings.encryption_key,
            "PAYPORTAL_WEBHOOK_ALLOW_PRIVATE": "true",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert [r.headers["Payportal-Event-Id"] for r in receiver.requests] == [str(event_id)]


def test_a_slow_receiver_does_not_hold_up_the_other_deliveries(
    receiver, add_endpoint, append, worker
):
    for n in range(5):
        add_endpoint(f"{receiver.url}/slow/{n}")
    append()

    started = time.monotonic()
    worker.step()
    elapsed = time.monotonic() - started

    assert len(receiver.requests) == 5
    assert elapsed < 4, f"five one-second receivers took {elapsed:.1f} s (one after another: 5)"


def test_https_endpoints_are_reached_over_tls(
    receiver, add_endpoint, append, worker, live_testapp, owner_headers
):
    # the receiver speaks plain HTTP: the TLS handshake must fail, so nothing is sent in clear
    endpoint = add_endpoint(receiver.url.replace("http://", "https://"))
    append()

    worker.step()

    assert receiver.requests == []
    [delivery] = deliveries(live_testapp, owner_headers, endpoint["id"])
    assert delivery["status"] == "pending"
    assert "SSL" in delivery["attempts"][0]["error"]
