"""Prometheus metrics at /metrics: requests, transitions, webhooks, outbox, deliveries, DB pool.

Counters live in the process, or with several processes in prometheus-client's multiprocess
files under PROMETHEUS_MULTIPROC_DIR, summed at scrape time by whichever process answers:
payportal's own runner with `workers > 1` switches to them before it forks (prepare_for_workers,
in a temporary directory unless the variable is set); gunicorn needs the variable set before it
starts. Backlog figures are read from PostgreSQL at scrape time, so every process reports the
same truth; the pool gauge is the pool of the process answering the scrape. Access:
`metrics_access` = disabled, localhost (default) or token (Authorization: Bearer <METRICS_TOKEN>).
"""

from __future__ import annotations

import hmac
import os
import tempfile
import time

import sqlalchemy as sa
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from payportal.errors import json_error_response

HTTP_REQUESTS = Counter(
    "payportal_http_requests_total", "HTTP requests", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "payportal_http_request_duration_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PAYMENT_TRANSITIONS = Counter(
    "payportal_payment_transitions_total",
    "Payment status transitions committed",
    ["from_status", "to_status"],
)
GATEWAY_WEBHOOKS = Counter(
    "payportal_gateway_webhooks_total",
    "Inbound gateway webhooks by outcome",
    ["gateway", "outcome"],
)
PUBLISH_FAILURES = Counter(
    "payportal_outbox_publish_failures_total", "Events that failed to publish to SQS"
)
DELIVERIES = Counter(
    "payportal_webhook_deliveries_total",
    "Merchant webhook delivery attempts by outcome",
    ["outcome"],
)
METRICS = (
    HTTP_REQUESTS,
    HTTP_LATENCY,
    PAYMENT_TRANSITIONS,
    GATEWAY_WEBHOOKS,
    PUBLISH_FAILURES,
    DELIVERIES,
)

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def prepare_for_workers() -> str | None:
    """Before a server forks worker processes from this one: make the counters above write to
    prometheus-client's multiprocess files, so /metrics in any worker sums every worker's
    (dead ones' included: counters never go back). Sets PROMETHEUS_MULTIPROC_DIR to a new
    temporary directory when it is not set and returns that directory (the caller removes it
    when the server stops); returns None when the variable was set already.

    prometheus-client picks the in-process or multiprocess value class when it is imported, and
    the application (so this module) is loaded before the server runner reads `workers`: the
    metrics were made with in-process values, and are made again here. Nothing has been counted
    yet (the process that loads the application serves no request)."""
    created = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        created = tempfile.mkdtemp(prefix="payportal-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = created
    if not getattr(prometheus_values.ValueClass, "_multiprocess", False):
        prometheus_values.ValueClass = prometheus_values.MultiProcessValue()
        for metric in METRICS:
            if metric._labelnames:
                metric.clear()  # the children made by labels() come again, multiprocess
            else:
                metric._metric_init()
    return created


class DatabaseCollector:
    """Figures read at scrape time: outbox backlog and age, deliveries pending, rollup deltas
    waiting for the relay's fold, pool usage."""

    def __init__(self, engine):
        self.engine = engine

    def collect(self):
        pool = self.engine.pool
        in_use = GaugeMetricFamily(
            "payportal_db_pool_connections", "DB pool connections", labels=["state"]
        )
        in_use.add_metric(["checked_out"], pool.checkedout())
        in_use.add_metric(["idle"], pool.checkedin())
        yield in_use
        try:
            with self.engine.connect() as conn:
                backlog, oldest = conn.execute(
                    sa.text(
                        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) "
                        "FROM outbox_events WHERE published_at IS NULL"
                    )
                ).one()
                pending = conn.execute(
                    sa.text("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
                ).scalar()
                unfolded = conn.execute(
                    sa.text("SELECT count(*) FROM payment_total_deltas")
                ).scalar()
        except sa.exc.SQLAlchemyError:
            return
        yield GaugeMetricFamily(
            "payportal_outbox_backlog", "Events not yet published", value=backlog
        )
        yield GaugeMetricFamily(
            "payportal_outbox_oldest_unpublished_seconds",
            "Age of the oldest unpublished event",
            value=float(oldest),
        )
        yield GaugeMetricFamily(
            "payportal_webhook_deliveries_pending",
            "Merchant webhook deliveries waiting",
            value=pending,
        )
        # grows without end when no payportal-relay (or payportal-sweep) runs: the dashboard
        # stays exact, but its overview adds up every waiting delta of the merchant
        yield GaugeMetricFamily(
            "payportal_rollup_deltas_waiting",
            "Dashboard rollup deltas not yet folded into the totals",
            value=unfolded,
        )


def exposition(registry) -> bytes:
    collector_registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(collector_registry)
    else:
        for collector in METRICS:
            collector_registry.register(collector)
    collector_registry.register(DatabaseCollector(registry.dbengine))
    return generate_latest(collector_registry)


def _access_denied(request) -> Response | None:
    settings = request.app_settings
    if settings.metrics_access == "disabled":
        return json_error_response(request, 404, "not_found", "not_found", "no such resource")
    if settings.metrics_access == "token":
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        expected = settings.metrics_token or ""
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            return json_error_response(
                request,
                401,
                "authentication_error",
                "authentication_required",
                "metrics need the token",
            )
        return None
    if request.remote_addr not in _LOOPBACK:
        return json_error_response(
            request,
            403,
            "permission_error",
            "permission_denied",
            "metrics are served to localhost only",
        )
    return None


@view_config(route_name="metrics", permission=NO_PERMISSION_REQUIRED)
def metrics_view(request):
    denied = _access_denied(request)
    if denied is not None:
        return denied
    return Response(
        body=exposition(request.registry),
        content_type=CONTENT_TYPE_LATEST.split(";")[0],
        charset="utf-8",
    )


def metrics_tween_factory(handler, registry):
    def metrics_tween(request):
        start = time.perf_counter()
        response = handler(request)
        route = request.matched_route.name if request.matched_route else "none"
        HTTP_REQUESTS.labels(route, request.method, str(response.status_int)).inc()
        HTTP_LATENCY.labels(route).observe(time.perf_counter() - start)
        return response

    return metrics_tween


def count_transition(session, payment, transition, settings) -> None:
    # counted when the transition is made; a rolled-back request over-counts by one, which a
    # rate graph tolerates (the payment_transitions table is the exact record)
    PAYMENT_TRANSITIONS.labels(str(transition.from_status), str(transition.to_status)).inc()


def includeme(config):
    from payportal.payments.state import on_transition

    on_transition(count_transition)
    config.add_route("metrics", "/metrics")
    config.add_tween(
        "payportal.metrics.metrics_tween_factory",
        under="payportal.logging.correlation_tween_factory",
    )
