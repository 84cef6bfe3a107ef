"""A few seconds of memory for the lookups every authenticated request makes.

Without it each request with a JWT reads the merchant's status and password stamp, each
request with an API key reads the key and its merchant's status, and each dashboard page reads
the browser session with its merchant: a round trip (~30 % of a payment read, ~20 % of a
dashboard page) for answers that change a few times a year. With it:

- An entry lives `auth_cache_seconds` (default 5; 0 turns the cache off).
- Every change that must end access at once — a merchant's status or password, an API key's
  revocation, a browser session's revocation (or its expiry or last activity moved back), and
  the merchant's name or email a session shows — whoever makes it (this process, another
  worker, `payportal-admin` on another host) fires `NOTIFY payportal_auth, '<merchant id>'`
  from a trigger in the same transaction (migrations 0002 and 0004), so it is delivered exactly
  when that change commits. Each process listens on a connection of its own and forgets the
  merchant's entries on delivery.
- A cached session is still held to its expiry on every request and read again from the
  database once a minute, when its last_seen_at is due to move (payportal/portal/sessions.py).
  Operator sessions are not cached: the console is not a hot path, and an operator's
  deactivation has no trigger.
- This process also forgets them itself right after its own commit (`forget_after_commit`), so
  the request that revoked a key is answered only once the key is gone from this process.
- The cache answers only while its process is listening. Before LISTEN is in place, and after
  the listening connection drops (then everything is forgotten), every lookup goes to the
  database, so a missed notification can never keep a revoked key alive.
- A lookup that started before an invalidation does not store its (possibly stale) answer: a
  generation counter moves on every invalidation and entries are stored only if it did not.

What remains between processes is the delivery time of a notification (milliseconds on one
database) — a request on another worker in that window is treated as if it came just before
the revocation.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa

log = logging.getLogger(__name__)

CHANNEL = "payportal_auth"
EVERYTHING = "*"
MAX_ENTRIES = 50_000
RECONNECT_DELAY = 1.0


@dataclass(frozen=True)
class MerchantAuth:
    status: str
    password_changed_at: Any


@dataclass(frozen=True)
class KeyAuth:
    key_id: uuid.UUID
    merchant_id: uuid.UUID
    status: str


@dataclass(frozen=True)
class SessionAuth:
    """A merchant's dashboard session as last read, with what its pages show of the merchant."""

    merchant_id: uuid.UUID
    csrf_token: str
    status: str
    name: str
    email: str
    last_seen_at: dt.datetime
    expires_at: dt.datetime


class AuthCache:
    """Entries by merchant id (JWT), by API-key digest and by session digest, each tagged with
    its merchant."""

    def __init__(self, database_url: str, ttl: float):
        self.ttl = ttl
        self._lock = threading.Lock()
        self._merchants: dict[uuid.UUID, tuple[float, MerchantAuth]] = {}
        self._keys: dict[str, tuple[float, KeyAuth]] = {}
        self._sessions: dict[str, tuple[float, SessionAuth]] = {}
        self._generation = 0
        # when each key's last_used_at was last written by this process (monotonic seconds)
        self.key_touched: dict[uuid.UUID, float] = {}
        self._listener = _listener_for(database_url) if ttl > 0 else None
        if self._listener is not None:
            self._listener.caches.add(self)
            _caches.add(self)

    @property
    def enabled(self) -> bool:
        return self._listener is not None and self._listener.listening()

    @property
    def generation(self) -> int:
        return self._generation

    def merchant(self, merchant_id: uuid.UUID) -> MerchantAuth | None:
        return self._get(self._merchants, merchant_id)

    def key(self, digest: str) -> KeyAuth | None:
        return self._get(self._keys, digest)

    def session(self, digest: str) -> SessionAuth | None:
        return self._get(self._sessions, digest)

    def _get(self, table: dict, key):
        if not self.enabled:
            return None
        found = table.get(key)
        if found is None:
            return None
        stored_at, value = found
        if time.monotonic() - stored_at > self.ttl:
            table.pop(key, None)
            return None
        return value

    def store_merchant(self, merchant_id: uuid.UUID, value: MerchantAuth, generation: int) -> None:
        self._store(self._merchants, merchant_id, value, generation)

    def store_key(self, digest: str, value: KeyAuth, generation: int) -> None:
        self._store(self._keys, digest, value, generation)

    def store_session(self, digest: str, value: SessionAuth, generation: int) -> None:
        self._store(self._sessions, digest, value, generation)

    def _store(self, table: dict, key, value, generation: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            if generation != self._generation:
                return  # an invalidation arrived while this was being read
            if len(table) >= MAX_ENTRIES:
                table.clear()
            table[key] = (time.monotonic(), value)

    def forget(self, merchant_id: uuid.UUID | str | None) -> None:
        """Drop the merchant's entries (None or '*': every entry)."""
        with self._lock:
            self._generation += 1
            if merchant_id is None or merchant_id == EVERYTHING:
                self._merchants.clear()
                self._keys.clear()
                self._sessions.clear()
                return
            try:
                merchant_id = uuid.UUID(str(merchant_id))
            except ValueError:
                return
            self._merchants.pop(merchant_id, None)
            for table in (self._keys, self._sessions):
                for digest, (_at, value) in list(table.items()):
                    if value.merchant_id == merchant_id:
                        table.pop(digest, None)


def forget_after_commit(session, merchant_id: uuid.UUID) -> None:
    """Forget the merchant's entries in this process now (so no request of this process reads
    them meanwhile) and again once the session's transaction commits; the trigger's NOTIFY
    tells the other processes."""
    from payportal.db import TRANSACTION_MANAGER_KEY

    caches = list(_caches)
    if not caches:
        return

    def forget(_committed=True):
        for cache in caches:
            cache.forget(merchant_id)

    forget()
    manager = session.info.get(TRANSACTION_MANAGER_KEY)
    if manager is not None:
        manager.get().addAfterCommitHook(forget)


# every cache of this process (an app per test in the test suite; one in production)
_caches: weakref.WeakSet[AuthCache] = weakref.WeakSet()


class _Listener:
    """One LISTEN connection per process and database, shared by that database's caches."""

    def __init__(self, conninfo: str):
        self.conninfo = conninfo
        self.caches: weakref.WeakSet[AuthCache] = weakref.WeakSet()
        self._pid: int | None = None
        self._ready = threading.Event()
        self._start_lock = threading.Lock()

    def listening(self) -> bool:
        if self._pid != os.getpid():
            self._start()
        return self._ready.is_set()

    def _start(self) -> None:
        with self._start_lock:
            if self._pid == os.getpid():
                return
            # a forked child inherits the parent's flag but not its thread
            self._pid = os.getpid()
            self._ready = threading.Event()
            threading.Thread(target=self._run, name="payportal-auth-listener", daemon=True).start()

    def _forget_all(self, what: str) -> None:
        for cache in list(self.caches):
            cache.forget(what)

    def _run(self) -> None:
        ready = self._ready
        while True:
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # anything stored before LISTEN may have missed a notification
                    self._forget_all(EVERYTHING)
                    ready.set()
                    for notify in conn.notifies():
                        self._forget_all(notify.payload)
            except Exception as exc:  # the database went away: answer from it until it is back
                if ready.is_set():
                    log.warning("auth cache: listening connection lost (%s); cache off", exc)
                ready.clear()
                self._forget_all(EVERYTHING)
            time.sleep(RECONNECT_DELAY)


_listeners: dict[str, _Listener] = {}
_listeners_lock = threading.Lock()


def _listener_for(database_url: str) -> _Listener:
    url = sa.engine.make_url(database_url).set(drivername="postgresql")
    conninfo = url.render_as_string(hide_password=False)
    with _listeners_lock:
        listener = _listeners.get(conninfo)
        if listener is None:
            listener = _listeners[conninfo] = _Listener(conninfo)
        return listener
