"""X-Correlation-ID on every response, and one structured access-log line per request that never
carries a credential."""

from __future__ import annotations

import json
import logging
import re

import pytest

from payportal.logging import JsonFormatter
from tests.factories import create_api_key, create_merchant, merchant_headers

MINTED = re.compile(r"^[0-9a-f]{32}$")


def access_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "payportal.access"]


@pytest.fixture(autouse=True)
def _capture_access_log(caplog):
    caplog.set_level(logging.INFO, logger="payportal.access")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/healthz", 200),
        ("/api/v1/openapi.json", 200),
        ("/api/v1/nothing-here", 404),
        ("/api/v1/probe-charges", 405),
        ("/api/v1/probe-crash", 500),
        ("/dashboard/nothing-here", 404),
        ("/dashboard/probe-crash", 500),
    ],
)
def test_a_given_correlation_id_is_echoed_on_every_response(probe_testapp, path, status):
    response = probe_testapp.get(
        path, headers={"X-Correlation-ID": "order-1234.retry:2"}, status=status
    )
    assert response.headers["X-Correlation-ID"] == "order-1234.retry:2"


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/nothing-here", "/api/v1/probe-crash"])
def test_without_one_an_id_is_minted_per_request(probe_testapp, path):
    first = probe_testapp.get(path, expect_errors=True).headers["X-Correlation-ID"]
    second = probe_testapp.get(path, expect_errors=True).headers["X-Correlation-ID"]
    assert MINTED.match(first) and MINTED.match(second)
    assert first != second


@pytest.mark.parametrize(
    "given", ["two words", "x" * 129, "<script>", "id;drop", "caf\u00e9"], ids=repr
)
def test_a_malformed_id_is_replaced(probe_testapp, given):
    response = probe_testapp.get(
        "/api/v1/nothing-here",
        headers={"X-Correlation-ID": given.encode("utf-8").decode("latin-1")},
        status=404,
    )
    minted = response.headers["X-Correlation-ID"]
    assert MINTED.match(minted)
    assert response.json["error"]["correlation_id"] == minted


def test_one_access_line_per_request_with_its_facts(probe_testapp, caplog):
    response = probe_testapp.post_json(
        "/api/v1/probe-charges",
        {"amount": 1050, "currency": "USD"},
        headers={"X-Correlation-ID": "checkout-77"},
        status=201,
    )
    [record] = access_records(caplog)
    assert (record.method, record.path, record.status) == ("POST", "/api/v1/probe-charges", 201)
    assert record.correlation_id == response.headers["X-Correlation-ID"] == "checkout-77"
    assert isinstance(record.duration_ms, float) and record.duration_ms >= 0
    assert record.merchant_id is None
    assert record.getMessage().startswith("POST /api/v1/probe-charges 201 ")
    assert "correlation_id=checkout-77" in record.getMessage()


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/v1/nothing-here", 404), ("/api/v1/probe-crash", 500), ("/dashboard/probe-crash", 500)],
)
def test_failed_requests_are_logged_with_their_status(probe_testapp, caplog, path, status):
    response = probe_testapp.get(path, status=status)
    [record] = access_records(caplog)
    assert (record.path, record.status) == (path, status)
    assert record.correlation_id == response.headers["X-Correlation-ID"]


def test_the_merchant_is_logged_when_known(probe_testapp, dbsession, settings, caplog):
    merchant, headers = merchant_headers(dbsession, settings)
    probe_testapp.get("/api/v1/probe-charges", headers=headers, status=405)
    [record] = access_records(caplog)
    assert record.merchant_id == str(merchant.id)
    assert f"merchant_id={merchant.id}" in record.getMessage()


def test_credentials_and_query_strings_never_reach_the_log(
    probe_testapp, dbsession, settings, caplog
):
    merchant = create_merchant(dbsession, settings)
    _row, api_key = create_api_key(dbsession, merchant)
    probe_testapp.post_json(
        "/api/v1/probe-charges?reset_token=rst-secret-991&email=buyer@example.com",
        {"amount": 1050, "currency": "USD", "description": "card 4242424242424242"},
        headers={"Authorization": f"Bearer {api_key}", "Cookie": "session=cookie-secret-55"},
        status=201,
    )
    [record] = access_records(caplog)
    assert record.merchant_id == str(merchant.id)
    lines = caplog.text + JsonFormatter().format(record)
    for secret in (api_key, "rst-secret-991", "buyer@example.com", "4242", "cookie-secret-55"):
        assert secret not in lines
    assert "Authorization" not in lines


def test_the_json_formatter_writes_one_object_with_the_access_fields(probe_testapp, caplog):
    probe_testapp.get("/healthz", headers={"X-Correlation-ID": "probe-k8s-1"})
    [record] = access_records(caplog)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "info"
    assert entry["logger"] == "payportal.access"
    assert entry["time"].endswith("Z")
    assert {k: entry[k] for k in ("method", "path", "status", "correlation_id")} == {
        "method": "GET",
        "path": "/healthz",
        "status": 200,
        "correlation_id": "probe-k8s-1",
    }
    assert entry["duration_ms"] >= 0
