"""/metrics: Prometheus text with request, transition and backlog figures; access is guarded."""

import re

import pytest
from sqlalchemy.orm import Session, sessionmaker

from payportal.portal.rollup import fold_deltas
from tests.factories import merchant_headers

LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


def sample(text: str, name: str, **labels) -> float:
    """The value of one sample line of the exposition, 0 when absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_and_transitions(testapp, dbsession, settings):
    before = testapp.get("/metrics", extra_environ=LOCAL).text
    _merchant, headers = merchant_headers(dbsession, settings)
    created = testapp.post_json(
        "/api/v1/payments/initialize", {"amount": 2500, "currency": "USD"}, headers=headers
    )
    reference = created.json["payment"]["reference"]
    testapp.put_json(
        f"/api/v1/payments/{reference}/status", {"status": "completed"}, headers=headers
    )
    testapp.get("/healthz")
    after = testapp.get("/metrics", extra_environ=LOCAL)
    assert after.content_type == "text/plain"
    text = after.text
    assert sample(text, "payportal_http_requests_total", route="healthz", status="200") == (
        sample(before, "payportal_http_requests_total", route="healthz", status="200") + 1
    )
    assert (
        sample(
            text,
            "payportal_payment_transitions_total",
            from_status="pending",
            to_status="completed",
        )
        >= 1
    )
    assert re.search(r"^payportal_http_request_duration_seconds_bucket\{", text, re.M)
    assert 'payportal_db_pool_connections{state="checked_out"}' in text


def test_metrics_report_the_committed_outbox_backlog(live_testapp, committed_db, settings):
    with Session(committed_db) as session, session.begin():
        _merchant, headers = merchant_headers(session, settings)
    for amount in (100, 200, 300):
        live_testapp.post_json(
            "/api/v1/payments/initialize", {"amount": amount, "currency": "USD"}, headers=headers
        )
    text = live_testapp.get("/metrics", extra_environ=LOCAL).text
    assert sample(text, "payportal_outbox_backlog") == 3  # the publisher is off in tests
    assert sample(text, "payportal_outbox_oldest_unpublished_seconds") >= 0
    # no relay runs in tests: the three payments' rollup deltas wait for a fold
    assert sample(text, "payportal_rollup_deltas_waiting") == 3
    fold_deltas(sessionmaker(bind=committed_db))
    text = live_testapp.get("/metrics", extra_environ=LOCAL).text
    assert sample(text, "payportal_rollup_deltas_waiting") == 0


def test_metrics_refuse_remote_callers_by_default(testapp):
    r = testapp.get("/metrics", extra_environ={"REMOTE_ADDR": "203.0.113.7"}, status=403)
    assert r.json["error"]["type"] == "permission_error"


@pytest.fixture(scope="module")
def token_app(make_app):
    return make_app(
        **{
            "payportal.metrics_access": "token",
            "payportal.metrics_token": "metrics-token-for-tests-0123456789abcdef",
        }
    )


def test_metrics_with_a_token(token_app, webtest_for):
    app = webtest_for(token_app, REMOTE_ADDR="203.0.113.7")
    app.get("/metrics", status=401)
    app.get("/metrics", headers={"Authorization": "Bearer wrong"}, status=401)
    ok = app.get(
        "/metrics", headers={"Authorization": "Bearer metrics-token-for-tests-0123456789abcdef"}
    )
    assert "payportal_http_requests_total" in ok.text


@pytest.fixture(scope="module")
def disabled_app(make_app):
    return make_app(**{"payportal.metrics_access": "disabled"})


def test_metrics_can_be_disabled(disabled_app, webtest_for):
    webtest_for(disabled_app, **LOCAL).get("/metrics", status=404)


def test_metrics_count_gateway_webhooks_by_outcome(testapp, settings):
    import hashlib
    import hmac
    import json
    import time

    before = sample(
        testapp.get("/metrics", extra_environ=LOCAL).text,
        "payportal_gateway_webhooks_total",
        gateway="generic",
        outcome="ignored",
    )
    body = json.dumps(
        {
            "event_id": "evt_metrics_1",
            "event": "payment.completed",
            "reference": "pay_nobodyknowsthisreference",
            "status": "completed",
        }
    )
    timestamp = str(int(time.time()))
    signature = hmac.new(
        settings.webhook_secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256
    ).hexdigest()
    answer = testapp.post(
        "/api/v1/webhooks/payment",
        body,
        content_type="application/json",
        headers={"X-Timestamp": timestamp, "X-Signature": f"sha256={signature}"},
    )
    assert answer.json["outcome"] == "ignored"
    after = sample(
        testapp.get("/metrics", extra_environ=LOCAL).text,
        "payportal_gateway_webhooks_total",
        gateway="generic",
        outcome="ignored",
    )
    assert after == before + 1


def test_metrics_count_publish_failures(testapp, dbsession):
    import uuid

    from payportal.events.publisher import PublishOutcome, record_outcome

    before = sample(
        testapp.get("/metrics", extra_environ=LOCAL).text, "payportal_outbox_publish_failures_total"
    )
    failed = {uuid.uuid4(): "EndpointConnectionError: SQS unreachable" for _ in range(3)}
    record_outcome(
        dbsession, PublishOutcome(failed=failed, unreachable=True), dict.fromkeys(failed, 0)
    )
    after = sample(
        testapp.get("/metrics", extra_environ=LOCAL).text, "payportal_outbox_publish_failures_total"
    )
    assert after == before + 3


def test_every_delivery_status_has_a_metric_outcome():
    from payportal.events.delivery import DELIVERY_OUTCOMES
    from payportal.events.models import DeliveryStatus

    assert set(DELIVERY_OUTCOMES) == set(DeliveryStatus)
