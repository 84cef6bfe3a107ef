"""The per-process authentication cache: it saves the lookups, and access still ends when it must.

Committed mode throughout: the invalidations travel by NOTIFY, which PostgreSQL delivers only
when the changing transaction commits. Changes are made the way another worker process or
`payportal-admin` on another host makes them: on a connection of their own, not through the app.
"""

from __future__ import annotations

import time
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from payportal.merchants.authcache import AuthCache, MerchantAuth
from tests.factories import bearer, create_api_key, merchant_headers

PROFILE = "/api/v1/auth/profile"
PAYMENTS = "/api/v1/payments"


@pytest.fixture
def cache(wsgi_app):
    cache = wsgi_app.registry.auth_cache
    wait_until(lambda: cache.enabled, "the cache's LISTEN connection is up")
    return cache


def wait_until(condition, what: str, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"not within {timeout} s: {what}")


class StatementLog:
    """The SQL the app sends, to see which lookups the cache saved."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[str] = []

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, *args):
        self.statements.append(statement)

    def touching(self, table: str) -> list[str]:
        return [s for s in self.statements if f"FROM {table}" in s or f"UPDATE {table}" in s]


def committed_merchant_with_key(engine, settings):
    with Session(engine, expire_on_commit=False) as session, session.begin():
        merchant, headers = merchant_headers(session, settings)
        _row, key = create_api_key(session, merchant)
    return merchant, headers, key


def elsewhere(engine, sql: str, **params) -> None:
    """A change committed by someone else (another worker, an operator's command)."""
    with engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def test_a_cached_credential_costs_no_lookup(live_testapp, wsgi_app, committed_db, settings, cache):
    _merchant, headers, key = committed_merchant_with_key(committed_db, settings)
    live_testapp.get(PAYMENTS, headers=headers)
    live_testapp.get(PAYMENTS, headers=bearer(key))
    with StatementLog(committed_db) as log:
        live_testapp.get(PAYMENTS, headers=headers)
        live_testapp.get(PAYMENTS, headers=bearer(key))
    assert log.touching("merchants") == []
    assert log.touching("api_keys") == []
    assert len(log.statements) == 2  # the two pages themselves


def test_a_key_revoked_elsewhere_is_refused_at_once(live_testapp, committed_db, settings, cache):
    merchant, _headers, key = committed_merchant_with_key(committed_db, settings)
    live_testapp.get(PROFILE, headers=bearer(key))
    assert cache.key(_digest(key)) is not None
    elsewhere(
        committed_db, "UPDATE api_keys SET revoked_at = now() WHERE merchant_id = :m", m=merchant.id
    )
    # the NOTIFY was delivered when the UPDATE committed; the listener forgets within moments
    wait_until(lambda: cache.key(_digest(key)) is None, "the revoked key is forgotten")
    live_testapp.get(PROFILE, headers=bearer(key), status=401)


def test_suspension_elsewhere_ends_tokens_and_keys(live_testapp, committed_db, settings, cache):
    merchant, headers, key = committed_merchant_with_key(committed_db, settings)
    live_testapp.get(PAYMENTS, headers=headers)
    live_testapp.get(PAYMENTS, headers=bearer(key))
    elsewhere(
        committed_db, "UPDATE merchants SET status = 'suspended' WHERE id = :m", m=merchant.id
    )
    wait_until(lambda: cache.merchant(merchant.id) is None, "the suspended merchant is forgotten")
    for credential in (headers, bearer(key)):
        body = live_testapp.post_json(
            f"{PAYMENTS}/initialize",
            {"amount": 100, "currency": "USD"},
            headers=credential,
            status=403,
        ).json
        assert body["error"]["code"] == "merchant_inactive"


def test_a_password_changed_elsewhere_ends_older_tokens(
    live_testapp, committed_db, settings, cache
):
    merchant, headers, _key = committed_merchant_with_key(committed_db, settings)
    live_testapp.get(PROFILE, headers=headers)
    elsewhere(
        committed_db,
        "UPDATE merchants SET password_changed_at = now() WHERE id = :m",
        m=merchant.id,
    )
    wait_until(lambda: cache.merchant(merchant.id) is None, "the merchant is forgotten")
    live_testapp.get(PROFILE, headers=headers, status=401)


def test_revoking_through_the_api_ends_the_key_before_the_answer(
    live_testapp, committed_db, settings, cache
):
    _merchant, headers, _key = committed_merchant_with_key(committed_db, settings)
    created = live_testapp.post_json("/api/v1/api-keys", {"name": "k"}, headers=headers).json
    live_testapp.get(PROFILE, headers=bearer(created["key"]))
    live_testapp.delete(f"/api/v1/api-keys/{created['id']}", headers=headers, status=204)
    # no waiting: this process forgot it when the revocation committed
    live_testapp.get(PROFILE, headers=bearer(created["key"]), status=401)


def test_while_not_listening_nothing_is_answered_from_memory(
    live_testapp, committed_db, settings, cache
):
    merchant, _headers, key = committed_merchant_with_key(committed_db, settings)
    live_testapp.get(PROFILE, headers=bearer(key))
    assert cache.key(_digest(key)) is not None
    # the listening connection dies; a revocation made now notifies nobody
    elsewhere(
        committed_db,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE query = 'LISTEN payportal_auth' AND pid <> pg_backend_pid()",
    )
    wait_until(lambda: not cache.enabled, "the cache notices it is not listening")
    elsewhere(
        committed_db, "UPDATE api_keys SET revoked_at = now() WHERE merchant_id = :m", m=merchant.id
    )
    live_testapp.get(PROFILE, headers=bearer(key), status=401)
    # listening again (everything forgotten then), it still knows the key is gone
    wait_until(lambda: cache.enabled, "the cache listens again")
    live_testapp.get(PROFILE, headers=bearer(key), status=401)


def test_an_answer_read_before_an_invalidation_is_not_kept(settings, cache):
    merchant_id = uuid.uuid4()
    generation = cache.generation  # a lookup starts ...
    cache.forget(merchant_id)  # ... the merchant changes meanwhile ...
    cache.store_merchant(merchant_id, MerchantAuth("active", None), generation)
    assert cache.merchant(merchant_id) is None  # ... and what it read is not remembered


def test_entries_expire_and_zero_seconds_turns_the_cache_off(settings, cache):
    merchant_id = uuid.uuid4()
    short = AuthCache(settings.database_url, 0.05)
    wait_until(lambda: short.enabled, "listening")
    short.store_merchant(merchant_id, MerchantAuth("active", None), short.generation)
    assert short.merchant(merchant_id) is not None
    time.sleep(0.06)
    assert short.merchant(merchant_id) is None
    off = AuthCache(settings.database_url, 0)
    off.store_merchant(merchant_id, MerchantAuth("active", None), off.generation)
    assert not off.enabled and off.merchant(merchant_id) is None


def _digest(key: str) -> str:
    from payportal.merchants.policy import api_key_digest

    return api_key_digest(key)
