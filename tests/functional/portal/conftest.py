"""Dashboard test helpers: a signed-in browser (a real session row and its cookie) for webtest."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from payportal.portal.sessions import MERCHANT, OPERATOR, cookie_name, start_session
from tests.factories import create_merchant


@dataclass
class Browser:
    """A webtest app with a dashboard session cookie, and the CSRF token of that session."""

    app: object
    csrf: str
    merchant: object = None
    operator: object = None

    def get(self, path, **kwargs):
        return self.app.get(path, **kwargs)

    def post(self, path, params=None, *, csrf=True, **kwargs):
        data = dict(params or {})
        if csrf:
            data.setdefault("csrf_token", self.csrf)
        return self.app.post(path, data, **kwargs)


def sign_in_browser(app, dbsession, settings, *, merchant=None, operator=None) -> Browser:
    if operator is not None:
        raw_id, row = start_session(dbsession, operator_id=operator.id)
        app.set_cookie(cookie_name(settings, OPERATOR), raw_id)
    else:
        raw_id, row = start_session(dbsession, merchant_id=merchant.id)
        app.set_cookie(cookie_name(settings, MERCHANT), raw_id)
    return Browser(app=app, csrf=row.csrf_token, merchant=merchant, operator=operator)


@pytest.fixture
def sign_in(testapp, dbsession, settings):
    """sign_in(merchant=...) or sign_in(operator=...) -> a Browser with that session."""

    def sign_in(**owner) -> Browser:
        return sign_in_browser(testapp, dbsession, settings, **owner)

    return sign_in


@pytest.fixture
def browser(sign_in, dbsession, settings) -> Browser:
    """An active merchant signed in to the dashboard."""
    return sign_in(merchant=create_merchant(dbsession, settings, status="active"))
