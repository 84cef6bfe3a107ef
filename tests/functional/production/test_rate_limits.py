"""Token buckets per credential: 429 with Retry-After and X-RateLimit-* once the burst is spent."""

import pytest

from tests.factories import create_api_key, merchant_headers


@pytest.fixture(scope="module")
def limited_app(make_app):
    return make_app(
        **{
            "payportal.rate_limit_per_second": "0.5",
            "payportal.rate_limit_burst": "3",
            "payportal.rate_limit_initialize_per_second": "0.5",
            "payportal.rate_limit_initialize_burst": "2",
        }
    )


def test_burst_then_429_with_headers(limited_app, webtest_for, dbsession, settings):
    app = webtest_for(limited_app)
    _merchant, headers = merchant_headers(dbsession, settings)
    remaining = [
        app.get("/api/v1/payments", headers=headers).headers["X-RateLimit-Remaining"]
        for _ in range(3)
    ]
    assert remaining == ["2", "1", "0"]
    refused = app.get("/api/v1/payments", headers=headers, status=429)
    assert refused.json["error"]["type"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert refused.headers["X-RateLimit-Remaining"] == "0"


def test_each_credential_has_its_own_bucket(limited_app, webtest_for, dbsession, settings):
    app = webtest_for(limited_app)
    merchant, token_headers = merchant_headers(dbsession, settings)
    _row, key = create_api_key(dbsession, merchant)
    for _ in range(3):
        app.get("/api/v1/payments", headers=token_headers)
    app.get("/api/v1/payments", headers=token_headers, status=429)
    app.get("/api/v1/payments", headers={"Authorization": f"Bearer {key}"}, status=200)


def test_initialize_has_a_lower_limit_per_merchant(limited_app, webtest_for, dbsession, settings):
    app = webtest_for(limited_app)
    merchant, token_headers = merchant_headers(dbsession, settings)
    _row, key = create_api_key(dbsession, merchant)
    body = {"amount": 1000, "currency": "USD"}
    app.post_json("/api/v1/payments/initialize", body, headers=token_headers, status=201)
    app.post_json(
        "/api/v1/payments/initialize", body, headers={"Authorization": f"Bearer {key}"}, status=201
    )
    # the same merchant through either credential shares the initialize bucket
    app.post_json("/api/v1/payments/initialize", body, headers=token_headers, status=429)
