"""CORS on /api/v1: preflights for allowed origins, refusals for the rest, never credentials."""

import pytest

from tests.factories import merchant_headers

PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
}


@pytest.fixture(scope="module")
def cors_app(make_app):
    return make_app(**{"payportal.cors_origins": "https://shop.example.com localhost"})


def test_preflight_from_an_allowed_origin_is_answered(cors_app, webtest_for):
    app = webtest_for(cors_app)
    r = app.options(
        "/api/v1/payments/initialize",
        headers={"Origin": "https://shop.example.com", **PREFLIGHT},
        status=204,
    )
    assert r.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    allowed = {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "x-correlation-id"} <= allowed
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in r.headers
    assert "Origin" in r.headers["Vary"]


def test_any_localhost_port_is_allowed_in_development(cors_app, webtest_for):
    app = webtest_for(cors_app)
    r = app.options(
        "/api/v1/payments", headers={"Origin": "http://localhost:3000", **PREFLIGHT}, status=204
    )
    assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"


def test_preflight_from_another_origin_is_refused(cors_app, webtest_for):
    app = webtest_for(cors_app)
    r = app.options(
        "/api/v1/payments/initialize",
        headers={"Origin": "https://evil.example.net", **PREFLIGHT},
        status=403,
    )
    assert r.json["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in r.headers


def test_actual_request_carries_the_allow_origin_only_for_allowed_origins(
    cors_app, webtest_for, dbsession, settings
):
    app = webtest_for(cors_app)
    _merchant, headers = merchant_headers(dbsession, settings)
    ok = app.get("/api/v1/payments", headers={**headers, "Origin": "https://shop.example.com"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "X-Correlation-ID" in ok.headers["Access-Control-Expose-Headers"]
    other = app.get("/api/v1/payments", headers={**headers, "Origin": "https://evil.example.net"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_no_origins_configured_means_no_cors(testapp):
    r = testapp.options(
        "/api/v1/payments", headers={"Origin": "http://localhost:3000", **PREFLIGHT}, status=403
    )
    assert "Access-Control-Allow-Origin" not in r.headers
