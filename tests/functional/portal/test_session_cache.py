"""Dashboard sessions answered from the authentication cache: a page costs no session lookup,
and whatever ends a session (or changes what its pages show) still takes effect at once.

Committed mode, as in tests/functional/merchants/test_auth_cache.py: invalidations travel by
NOTIFY, delivered when the changing transaction commits; changes are made "elsewhere", on a
connection of their own, the way another worker or an operator's command makes them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy.orm import Session

from payportal.portal.sessions import MERCHANT, cookie_name, session_digest
from tests.factories import (
    DEFAULT_PASSWORD,
    access_token,
    bearer,
    create_merchant,
    create_operator,
)
from tests.functional.merchants.test_auth_cache import StatementLog, elsewhere, wait_until
from tests.functional.portal.conftest import sign_in_browser

HOME = "/dashboard/home"


@pytest.fixture
def cache(wsgi_app, monkeypatch):
    cache = wsgi_app.registry.auth_cache
    wait_until(lambda: cache.enabled, "the cache's LISTEN connection is up")
    # entries outlive every wait below: only a notification (or this process's own commit)
    # can make the cache forget within the test
    monkeypatch.setattr(cache, "ttl", 300)
    return cache


def raw_cookie(app, settings) -> str:
    return app.cookies[cookie_name(settings, MERCHANT)].strip('"')  # webtest keeps it quoted


@pytest.fixture
def signed_in(live_testapp, committed_db, settings):
    """An active merchant (committed) signed in to the dashboard of live_testapp."""
    with Session(committed_db, expire_on_commit=False) as session, session.begin():
        merchant = create_merchant(session, settings, status="active", name="Acme Books")
        browser = sign_in_browser(live_testapp, session, settings, merchant=merchant)
    browser.digest = session_digest(raw_cookie(live_testapp, settings))
    return browser


def test_a_cached_session_costs_no_lookup(signed_in, committed_db, cache):
    signed_in.get(HOME)
    assert cache.session(signed_in.digest) is not None
    with StatementLog(committed_db) as log:
        page = signed_in.get(HOME)
    assert "Acme Books" in page.text
    assert log.touching("dashboard_sessions") == []


def change_elsewhere(committed_db, cache, signed_in, sql: str) -> None:
    """Commit `sql` on a connection of its own (:d the session's digest, :m its merchant) and
    wait until the notification has made this process's cache forget the session."""
    elsewhere(committed_db, sql, d=signed_in.digest, m=signed_in.merchant.id)
    wait_until(lambda: cache.session(signed_in.digest) is None, "the session is forgotten")


ENDINGS = {
    "revoked": "UPDATE dashboard_sessions SET revoked_at = now() WHERE digest = :d",
    "deleted while valid": "DELETE FROM dashboard_sessions WHERE digest = :d",
    "expired": "UPDATE dashboard_sessions SET expires_at = now() - interval '1 second' "
    "WHERE digest = :d",
    # idle for longer than the timeout
    "idle": "UPDATE dashboard_sessions SET last_seen_at = now() - interval '3 hours' "
    "WHERE digest = :d",
    "password changed": "UPDATE merchants SET password_changed_at = now() WHERE id = :m",
}


@pytest.mark.parametrize("change", ENDINGS.values(), ids=ENDINGS.keys())
def test_a_session_ended_elsewhere_is_signed_out(signed_in, committed_db, cache, change):
    signed_in.get(HOME)
    change_elsewhere(committed_db, cache, signed_in, change)
    assert signed_in.get(HOME, status=303).location.startswith("http://localhost/dashboard/login")


def test_signing_out_ends_the_session_before_the_answer(live_testapp, signed_in, settings, cache):
    signed_in.get(HOME)
    raw_id = raw_cookie(live_testapp, settings)
    signed_in.post("/dashboard/logout", status=303)
    # the same cookie again, at once: this process forgot the session when the sign-out committed
    live_testapp.set_cookie(cookie_name(settings, MERCHANT), raw_id)
    signed_in.get(HOME, status=303)


def test_suspension_elsewhere_shows_on_the_next_page(signed_in, committed_db, cache):
    assert "Your account is suspended" not in signed_in.get(HOME).text
    change_elsewhere(
        committed_db, cache, signed_in, "UPDATE merchants SET status = 'suspended' WHERE id = :m"
    )
    assert "Your account is suspended" in signed_in.get(HOME).text


def test_a_new_name_shows_on_the_next_page(live_testapp, signed_in, committed_db, settings, cache):
    signed_in.get(HOME)
    # through the API in this process: forgotten when the change commits, no waiting
    headers = bearer(access_token(settings, signed_in.merchant))
    live_testapp.patch_json("/api/v1/auth/profile", {"name": "Acme Press"}, headers=headers)
    assert "Acme Press" in signed_in.get(HOME).text
    # elsewhere: the trigger's notification
    change_elsewhere(
        committed_db, cache, signed_in, "UPDATE merchants SET name = 'Acme Prints' WHERE id = :m"
    )
    assert "Acme Prints" in signed_in.get(HOME).text


def test_once_a_minute_the_session_is_read_again_and_its_activity_recorded(
    signed_in, committed_db, cache
):
    signed_in.get(HOME)
    entry = cache.session(signed_in.digest)
    # an entry whose last_seen_at is due to move: the row is read again (it was seen just now)
    due = replace(entry, last_seen_at=entry.last_seen_at - dt.timedelta(minutes=2))
    cache.store_session(signed_in.digest, due, cache.generation)
    with StatementLog(committed_db) as log:
        signed_in.get(HOME)
    assert [s.split()[0] for s in log.touching("dashboard_sessions")] == ["SELECT"]
    assert cache.session(signed_in.digest).last_seen_at == entry.last_seen_at
    # the row itself last seen two minutes ago (set elsewhere): read and moved
    change_elsewhere(
        committed_db,
        cache,
        signed_in,
        "UPDATE dashboard_sessions SET last_seen_at = now() - interval '2 minutes' "
        "WHERE digest = :d",
    )
    with StatementLog(committed_db) as log:
        signed_in.get(HOME)
    assert [s.split()[0] for s in log.touching("dashboard_sessions")] == ["SELECT", "UPDATE"]
    assert cache.session(signed_in.digest).last_seen_at > entry.last_seen_at
    # moving it forward notifies nobody: the entry stays and the next page reads nothing
    with StatementLog(committed_db) as log:
        signed_in.get(HOME)
    assert log.touching("dashboard_sessions") == []


def test_an_entry_due_its_minute_is_never_prolonged_without_the_database(
    signed_in, committed_db, cache
):
    signed_in.get(HOME)
    entry = cache.session(signed_in.digest)
    change_elsewhere(committed_db, cache, signed_in, ENDINGS["revoked"])
    # as if a request that read the entry before the notification put it back afterwards
    stale = replace(entry, last_seen_at=entry.last_seen_at - dt.timedelta(minutes=2))
    cache.store_session(signed_in.digest, stale, cache.generation)
    signed_in.get(HOME, status=303)


def test_signing_in_again_ends_the_cached_session_at_once(live_testapp, signed_in, settings, cache):
    signed_in.get(HOME)
    old_raw_id = raw_cookie(live_testapp, settings)
    # the sign-in form was opened before (a signed-in browser is sent on from it) ...
    live_testapp.reset()
    form = live_testapp.get("/dashboard/login").forms[0]
    form["email"] = signed_in.merchant.email
    form["password"] = DEFAULT_PASSWORD
    # ... and sent while the browser holds its cached session (whose CSRF token then counts)
    live_testapp.set_cookie(cookie_name(settings, MERCHANT), old_raw_id)
    form.get("csrf_token").force_value(signed_in.csrf)
    form.submit(status=303)
    assert raw_cookie(live_testapp, settings) != old_raw_id
    signed_in.get(HOME)  # the new session
    live_testapp.set_cookie(cookie_name(settings, MERCHANT), old_raw_id)
    signed_in.get(HOME, status=303)


def test_operator_sessions_are_read_on_every_page(live_testapp, committed_db, settings, cache):
    with Session(committed_db, expire_on_commit=False) as session, session.begin():
        operator = create_operator(session, settings)
        sign_in_browser(live_testapp, session, settings, operator=operator)
    live_testapp.get("/admin/merchants")
    with StatementLog(committed_db) as log:
        live_testapp.get("/admin/merchants")
    assert log.touching("dashboard_sessions")
