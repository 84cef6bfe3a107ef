"""Fixtures for the house's tests: the app with the test-only probes, apps on other databases."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
import webtest

from payportal.db import TEST_CONNECTION_KEY

PROBES = "tests.functional.core.probe_views"


def build_app(app_settings: dict, **overrides):
    from payportal import main

    return main({}, **{**app_settings, **overrides})


@pytest.fixture(scope="session")
def probe_app(app_settings):
    app = build_app(app_settings, **{"pyramid.includes": PROBES})
    yield app
    app.registry.dbengine.dispose()


@pytest.fixture
def probe_testapp(probe_app, connection):
    """webtest on the probe app, inside the test's rolled-back transaction."""
    return webtest.TestApp(
        probe_app, extra_environ={TEST_CONNECTION_KEY: connection, "HTTP_HOST": "localhost"}
    )


@pytest.fixture
def live_probe_testapp(probe_app, committed_db):
    """webtest on the probe app with real commits (emptied afterwards by committed_db)."""
    return webtest.TestApp(probe_app, extra_environ={"HTTP_HOST": "localhost"})


@pytest.fixture
def scratch_database(postgres_server_url):
    """Make empty databases on the test server; each is dropped after the test."""
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    names: list[str] = []

    def create() -> str:
        name = f"payportal_scratch_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        names.append(name)
        return (
            sa.engine.make_url(postgres_server_url)
            .set(database=name)
            .render_as_string(hide_password=False)
        )

    yield create
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def app_on(app_settings):
    """Build apps on another database URL; their connection pools are closed afterwards."""
    apps = []

    def build(url: str):
        app = build_app(app_settings, **{"sqlalchemy.url": url})
        apps.append(app)
        return webtest.TestApp(app, extra_environ={"HTTP_HOST": "localhost"})

    yield build
    for app in apps:
        app.registry.dbengine.dispose()
