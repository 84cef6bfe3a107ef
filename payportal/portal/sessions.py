"""Server-side browser sessions for the dashboard and the operator console.

The cookie holds a random id; the dashboard_sessions row holds only its SHA-256, the CSRF token,
an absolute expiry and an idle timeout. Merchant and operator sessions live in different cookies
and are only ever read under their own path (/dashboard, /admin), never under /api, so a browser
cookie can never authenticate an API call.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
import zope.sqlalchemy

from payportal.db import utcnow
from payportal.merchants.authcache import AuthCache, SessionAuth, forget_after_commit
from payportal.merchants.models import DashboardSession, Merchant, Operator
from payportal.security import CredentialKind, Identity

SESSION_LIFETIME = dt.timedelta(hours=12)
IDLE_TIMEOUT = dt.timedelta(hours=2)
# last_seen_at moves at most once a minute, so browsing does not write on every page
TOUCH_RESOLUTION = dt.timedelta(minutes=1)
# environments served over plain http on a developer's machine or inside the test suite
LOCAL_ENVIRONMENTS = frozenset({"development", "test"})


@dataclass(frozen=True)
class Realm:
    """One kind of signed-in browser: where its pages live and which cookie carries it."""

    name: str
    cookie_base: str
    path_prefix: str


MERCHANT = Realm("merchant", "payportal", "/dashboard")
OPERATOR = Realm("operator", "payportal-admin", "/admin")


@dataclass(frozen=True)
class ActiveSession:
    """A session row that is valid right now, with what the pages need about its owner."""

    digest: str
    csrf_token: str
    realm: Realm
    merchant_id: uuid.UUID | None
    merchant_status: str | None
    operator_id: uuid.UUID | None
    display_name: str
    email: str

    def identity(self) -> Identity:
        if self.realm is OPERATOR:
            return Identity(
                kind=CredentialKind.OPERATOR_SESSION,
                operator_id=self.operator_id,
                credential_id=self.digest,
            )
        return Identity(
            kind=CredentialKind.SESSION,
            merchant_id=self.merchant_id,
            merchant_status=self.merchant_status,
            credential_id=self.digest,
        )


def is_local(settings) -> bool:
    return settings.environment in LOCAL_ENVIRONMENTS


def cookie_name(settings, realm: Realm) -> str:
    # __Host- makes the browser refuse the cookie unless Secure, Path=/ and without Domain
    return realm.cookie_base if is_local(settings) else f"__Host-{realm.cookie_base}"


def session_digest(raw_id: str) -> str:
    return hashlib.sha256(raw_id.encode()).hexdigest()


def realm_for_path(path: str) -> Realm | None:
    for realm in (MERCHANT, OPERATOR):
        if path == realm.path_prefix or path.startswith(realm.path_prefix + "/"):
            return realm
    return None


def start_session(
    session,
    *,
    merchant_id: uuid.UUID | None = None,
    operator_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> tuple[str, DashboardSession]:
    """A new session for one owner; returns (raw id for the cookie, row)."""
    now = now or utcnow()
    raw_id = secrets.token_urlsafe(32)
    row = DashboardSession(
        digest=session_digest(raw_id),
        merchant_id=merchant_id,
        operator_id=operator_id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
    session.add(row)
    session.flush()
    return raw_id, row


def revoke_session(session, digest: str) -> None:
    merchant_id = session.execute(
        sa.update(DashboardSession)
        .where(DashboardSession.digest == digest, DashboardSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(DashboardSession.merchant_id)
    ).scalar()
    zope.sqlalchemy.mark_changed(session)
    if merchant_id is not None:
        # the trigger tells the other processes; this one must not answer from its cache
        # between the commit and the notification's arrival
        forget_after_commit(session, merchant_id)


def revoke_merchant_sessions(session, merchant_id: uuid.UUID) -> int:
    """Sign a merchant out of every browser (password change); returns how many ended."""
    result = session.execute(
        sa.update(DashboardSession)
        .where(DashboardSession.merchant_id == merchant_id, DashboardSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if result.rowcount:
        zope.sqlalchemy.mark_changed(session)
        forget_after_commit(session, merchant_id)
    return result.rowcount or 0


def _valid_at():
    """Not revoked, not expired, not idle (parameters now, idle_since = now - IDLE_TIMEOUT)."""
    return sa.and_(
        DashboardSession.revoked_at.is_(None),
        DashboardSession.expires_at > sa.bindparam("now"),
        DashboardSession.last_seen_at > sa.bindparam("idle_since"),
    )


# One query per page: the columns the pages need of the session and of its owner, built once.
# Every page reads the row itself, so a revoked session (sign-out, password change) or a
# deactivated operator is refused on the very next request, in every process.
_OPERATOR_SESSION = (
    sa.select(
        DashboardSession.csrf_token,
        DashboardSession.operator_id,
        DashboardSession.last_seen_at,
        Operator.name,
        Operator.email,
    )
    .join(Operator, Operator.id == DashboardSession.operator_id)
    .where(DashboardSession.digest == sa.bindparam("digest"), Operator.is_active, _valid_at())
)
_MERCHANT_SESSION = (
    sa.select(
        DashboardSession.csrf_token,
        DashboardSession.merchant_id,
        DashboardSession.last_seen_at,
        DashboardSession.expires_at,
        Merchant.status,
        Merchant.name,
        Merchant.email,
    )
    .join(Merchant, Merchant.id == DashboardSession.merchant_id)
    # a password change ends every browser session that began before it
    .where(
        DashboardSession.digest == sa.bindparam("digest"),
        DashboardSession.created_at >= Merchant.password_changed_at,
        _valid_at(),
    )
)


def load_session(session, raw_id: str, realm: Realm, cache: AuthCache) -> ActiveSession | None:
    """The valid session behind a cookie value, or None (unknown, expired, idle, revoked).

    A merchant session is answered from the authentication cache (the registry's AuthCache)
    while it holds one: expiry is still checked against the cached row, the row is read again
    (and last_seen_at moved) once a minute, so the idle timeout holds too, and anything that
    ends a session elsewhere reaches the cache by NOTIFY (payportal/merchants/authcache.py)."""
    now = utcnow()
    digest = session_digest(raw_id)
    if realm is OPERATOR:
        row, _seen = _read_and_touch(session, _OPERATOR_SESSION, digest, now)
        if row is None:
            return None
        return ActiveSession(
            digest=digest,
            csrf_token=row.csrf_token,
            realm=OPERATOR,
            merchant_id=None,
            merchant_status=None,
            operator_id=row.operator_id,
            display_name=row.name or row.email,
            email=row.email,
        )
    generation = cache.generation
    cached = cache.session(digest)
    # once a minute (when last_seen_at is due to move) the row is read again and touched: the
    # cache never prolongs an entry the database has not just confirmed
    if (
        cached is not None
        and cached.expires_at > now
        and cached.last_seen_at > now - TOUCH_RESOLUTION
    ):
        return _merchant_session(digest, cached)
    row, last_seen_at = _read_and_touch(session, _MERCHANT_SESSION, digest, now)
    if row is None:
        return None
    found = SessionAuth(
        merchant_id=row.merchant_id,
        csrf_token=row.csrf_token,
        status=str(row.status),
        name=row.name,
        email=row.email,
        last_seen_at=last_seen_at,
        expires_at=row.expires_at,
    )
    cache.store_session(digest, found, generation)
    return _merchant_session(digest, found)


def _merchant_session(digest: str, found: SessionAuth) -> ActiveSession:
    return ActiveSession(
        digest=digest,
        csrf_token=found.csrf_token,
        realm=MERCHANT,
        merchant_id=found.merchant_id,
        merchant_status=found.status,
        operator_id=None,
        display_name=found.name,
        email=found.email,
    )


def _read_and_touch(session, statement, digest: str, now: dt.datetime):
    """(the valid session's row, its last_seen_at), moving last_seen_at to `now` when it is
    a minute old; (None, None) without a valid session."""
    params = {"digest": digest, "now": now, "idle_since": now - IDLE_TIMEOUT}
    row = session.execute(statement, params).first()
    if row is None:
        return None, None
    if row.last_seen_at >= now - TOUCH_RESOLUTION:
        return row, row.last_seen_at
    # never backwards (two workers touching at once may commit out of order): moving
    # last_seen_at back notifies every process to forget the merchant (migration 0004)
    session.execute(
        sa.update(DashboardSession)
        .where(DashboardSession.digest == digest, DashboardSession.last_seen_at < now)
        .values(last_seen_at=now)
    )
    zope.sqlalchemy.mark_changed(session)
    return row, now


def request_session(request) -> ActiveSession | None:
    """The session of the realm this path belongs to (reified as request.dashboard_session)."""
    realm = realm_for_path(request.path_info)
    if realm is None:
        return None
    raw_id = request.cookies.get(cookie_name(request.app_settings, realm))
    if not raw_id or len(raw_id) > 100:
        return None
    return load_session(request.dbsession, raw_id, realm, request.registry.auth_cache)


def identity_from_session(request) -> Identity | None:
    """Identity source for the security policy: only under /dashboard and /admin."""
    active = request.dashboard_session
    return active.identity() if active is not None else None


def set_session_cookie(request, response, realm: Realm, raw_id: str) -> None:
    settings = request.app_settings
    response.set_cookie(
        cookie_name(settings, realm),
        raw_id,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
        secure=not is_local(settings),
        httponly=True,
        samesite="Lax",
    )


def clear_session_cookie(request, response, realm: Realm) -> None:
    settings = request.app_settings
    # set, not deleted: a __Host- cookie is only replaced by one with the same attributes
    response.set_cookie(
        cookie_name(settings, realm),
        "",
        max_age=0,
        path="/",
        secure=not is_local(settings),
        httponly=True,
        samesite="Lax",
    )


def sign_in(request, response, realm: Realm, owner_id: uuid.UUID) -> None:
    """A fresh session id at every sign-in (no fixation); any session the browser had ends."""
    previous = request.dashboard_session
    if previous is not None:
        revoke_session(request.dbsession, previous.digest)
    owner = {"operator_id": owner_id} if realm is OPERATOR else {"merchant_id": owner_id}
    raw_id, _row = start_session(request.dbsession, **owner)
    set_session_cookie(request, response, realm, raw_id)


def sign_out(request, response, realm: Realm) -> None:
    active = request.dashboard_session
    if active is not None:
        revoke_session(request.dbsession, active.digest)
    clear_session_cookie(request, response, realm)


def includeme(config):
    config.add_request_method(request_session, "dashboard_session", reify=True)
    config.registry.security_policy_impl.identity_sources.append(identity_from_session)
