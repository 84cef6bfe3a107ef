"""Apps with production-like settings (rate limits, metrics access, CORS) on the test database."""

from __future__ import annotations

import pytest
import webtest

from payportal.db import TEST_CONNECTION_KEY


@pytest.fixture(scope="module")
def make_app(app_settings):
    """Build extra app instances with overridden settings; disposed after the module."""
    from payportal import main

    apps = []

    def build(**overrides):
        app = main({}, **{**app_settings, **overrides})
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.registry.dbengine.dispose()


@pytest.fixture
def webtest_for(connection):
    """webtest on any app instance, inside the test's rolled-back transaction."""

    def wrap(app, **environ):
        return webtest.TestApp(
            app,
            extra_environ={TEST_CONNECTION_KEY: connection, "HTTP_HOST": "localhost", **environ},
        )

    return wrap
