"""Pooled connections are pinged only after sitting idle (payportal.db.ping_idle_connections):
none of a busy pool's checkouts costs a round trip, and a connection that died while idle is
replaced before a request can see it."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from payportal import db


@pytest.fixture
def pings(monkeypatch):
    """Counts the pings every engine's dialect sends (they are the dialect's do_ping)."""
    sent = []
    original = sa.dialects.postgresql.psycopg.PGDialect_psycopg.do_ping

    def counted(self, dbapi_connection):
        sent.append(dbapi_connection)
        return original(self, dbapi_connection)

    monkeypatch.setattr(sa.dialects.postgresql.psycopg.PGDialect_psycopg, "do_ping", counted)
    return sent


@pytest.fixture
def engine(database_url):
    engine = db.make_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def backend_pid(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.text("SELECT pg_backend_pid()"))


def test_a_connection_in_use_a_moment_ago_is_handed_out_without_a_ping(engine, pings):
    first = backend_pid(engine)
    for _ in range(20):
        assert backend_pid(engine) == first
    assert pings == []


def test_a_connection_idle_past_the_window_is_pinged_once(engine, pings):
    first = backend_pid(engine)
    time.sleep(db.PING_AFTER_IDLE_SECONDS + 0.2)
    assert backend_pid(engine) == first
    assert len(pings) == 1
    assert backend_pid(engine) == first  # just used again: no second ping
    assert len(pings) == 1


def test_a_connection_that_died_while_idle_is_replaced_before_anyone_uses_it(
    engine, database_url, pings
):
    dead = backend_pid(engine)
    killer = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with killer.connect() as connection:
        assert connection.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": dead})
    killer.dispose()
    time.sleep(db.PING_AFTER_IDLE_SECONDS + 0.2)

    replacement = backend_pid(engine)  # no error reaches the caller

    assert replacement != dead
    assert len(pings) == 1
