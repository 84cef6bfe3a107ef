"""A database that cannot be reached answers 503 with Retry-After, never a 500."""

import logging
import uuid

import pytest
import webtest

from tests.factories import bearer


@pytest.fixture(scope="module")
def unreachable_app(make_app):
    # port 1 on loopback: nothing listens, connections are refused at once
    return make_app(
        **{
            "sqlalchemy.url": "postgresql+psycopg://postgres@127.0.0.1:1/payportal",
            "payportal.db_pool_timeout": "1",
        }
    )


def test_api_answers_503_with_retry_after(unreachable_app, settings, caplog):
    from payportal.merchants import tokens

    app = webtest.TestApp(unreachable_app, extra_environ={"HTTP_HOST": "localhost"})
    token, _claims = tokens.issue(settings, tokens.ACCESS, uuid.uuid4())
    with caplog.at_level(logging.WARNING):
        r = app.get("/api/v1/payments", headers=bearer(token), status=503)
    assert r.json["error"]["code"] == "database_unavailable"
    assert r.headers["Retry-After"] == "2"
    assert r.json["error"]["correlation_id"] == r.headers["X-Correlation-ID"]
    assert not [rec for rec in caplog.records if rec.exc_info], "no traceback for an outage"


def test_sign_in_answers_503_too(unreachable_app):
    app = webtest.TestApp(unreachable_app, extra_environ={"HTTP_HOST": "localhost"})
    r = app.post(
        "/api/v1/auth/login",
        '{"email": "a@example.com", "password": "0123456789ab"}',
        content_type="application/json",
        status=503,
    )
    assert r.json["error"]["type"] == "server_error"
