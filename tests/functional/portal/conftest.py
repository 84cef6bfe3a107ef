"""Dashboard test helpers: a signed-in browser (a real session row and its cookie) for webtest,
and rollup folders at work in threads."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass

import pytest

from payportal.portal.rollup import fold_deltas
from payportal.portal.sessions import MERCHANT, OPERATOR, cookie_name, start_session
from tests.factories import create_merchant


@contextlib.contextmanager
def folders_at_work(factory, count: int, *, batch: int, barrier: threading.Barrier, errors: list):
    """`count` threads folding the rollup's deltas, `batch` per transaction, from when the
    barrier's other parties are ready until the block ends; what they raise goes to `errors`."""
    working = threading.Event()
    working.set()

    def fold():
        try:
            barrier.wait()
            while working.is_set():
                fold_deltas(factory, batch=batch)
        except BaseException as exc:  # reported to the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=fold) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        working.clear()
        for thread in threads:
            thread.join(60)


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
