"""Test harness: a real PostgreSQL, the schema built once by Alembic, one rolled-back
transaction per test shared with the app through the WSGI environ."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import webtest
from sqlalchemy.orm import Session

from payportal.db import TEST_CONNECTION_KEY, load_all_models
from payportal.settings import SOURCES

ROOT = Path(__file__).resolve().parent.parent

# The developer's own DATABASE_URL, JWT_SECRET, ... must never leak into the tests.
for _ini_key, _env_key in SOURCES.values():
    if _env_key:
        os.environ.pop(_env_key, None)

TEST_SETTINGS = {
    "payportal.environment": "test",
    "payportal.jwt_secret": "test-jwt-access-secret-0123456789abcdef",
    "payportal.jwt_refresh_secret": "test-jwt-refresh-secret-0123456789abcdef",
    "payportal.password_pepper": "test-password-pepper-0123456789abcdef",
    "payportal.bcrypt_rounds": "4",
    "payportal.encryption_key": "t1:dGVzdC1lbmNyeXB0aW9uLWtleS0zMi1ieXRlcyEhISE=",
    "payportal.webhook_secret": "test-generic-webhook-secret-0123456789",
    "payportal.stripe_webhook_secret": "whsec_test_stripe_secret_0123456789",
    "payportal.paystack_secret_key": "sk_test_paystack_secret_0123456789",
    "payportal.flutterwave_secret_hash": "test-flutterwave-hash-0123456789",
    "payportal.auto_activate": "false",
    "payportal.allow_simulation": "true",
    "payportal.webhook_allow_private": "true",
    "payportal.publisher_enabled": "false",
    "payportal.platform_fee_percent": "2.9",
    "payportal.platform_fee_fixed": "USD:30,EUR:25",
    "payportal.public_url": "http://localhost",
    "payportal.log_format": "text",
    # rate limiting off: tests fire bursts from one credential; tests/functional/core proves it
    "payportal.rate_limit_per_second": "0",
}


def _server_url() -> tuple[str, object | None]:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        return given, None
    from payportal.scripts.devdb import sqlalchemy_url, start_embedded_postgres

    server = start_embedded_postgres(Path(tempfile.mkdtemp(prefix="payportal-pg-")), "delete")
    return sqlalchemy_url(server.get_uri(), "postgres"), server


def _with_database(url: str, name: str) -> str:
    return sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server_url():
    url, server = _server_url()
    yield url
    if server is not None:
        server.cleanup()


@pytest.fixture(scope="session")
def database_url(postgres_server_url):
    """A fresh database for this run (parallel runs never collide), migrated to head."""
    from alembic import command
    from alembic.config import Config

    name = f"payportal_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = _with_database(postgres_server_url, name)
    config = Config(str(ROOT / "development.ini"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", autouse=True)
def api_responses_conform():
    """Every /api/v1 response a webtest client gets must be one the OpenAPI document promises."""
    from tests.contract.conformance import checking_webtest_responses

    with checking_webtest_responses():
        yield


@pytest.fixture(scope="session")
def app_settings(database_url):
    return {**TEST_SETTINGS, "sqlalchemy.url": database_url}


@pytest.fixture(scope="session")
def wsgi_app(app_settings):
    from payportal import main

    app = main({}, **app_settings)
    yield app
    app.registry.dbengine.dispose()


@pytest.fixture(scope="session")
def settings(wsgi_app):
    """The validated Settings object the app runs with."""
    return wsgi_app.registry.payportal_settings


@pytest.fixture
def connection(wsgi_app):
    """A connection inside a transaction that is rolled back after the test."""
    conn = wsgi_app.registry.dbengine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def dbsession(connection):
    """The test's own session, on the test's connection: it sees what the app wrote."""
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    yield session
    session.close()


@pytest.fixture
def testapp(wsgi_app, connection):
    """webtest on the app; every request runs on the test's connection (rolled back later)."""
    return webtest.TestApp(
        wsgi_app,
        extra_environ={
            TEST_CONNECTION_KEY: connection,
            "HTTP_HOST": "localhost",
        },
    )


@pytest.fixture
def committed_db(wsgi_app):
    """For tests that need real commits (threads, other processes, after-commit hooks):
    everything they wrote is removed afterwards."""
    engine = wsgi_app.registry.dbengine
    yield engine
    tables = ", ".join(f'"{t.name}"' for t in load_all_models().sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} CASCADE"))


@pytest.fixture
def live_testapp(wsgi_app, committed_db):
    """webtest on the app with real commits (see committed_db)."""
    return webtest.TestApp(wsgi_app, extra_environ={"HTTP_HOST": "localhost"})
