"""The SecurityPolicy: turns a bearer JWT, a bearer API key or a dashboard session into an
Identity, and asks the credential table and then the context's ACL whether it may act."""

from __future__ import annotations

import hashlib
import time

import sqlalchemy as sa
import zope.sqlalchemy
from pyramid.authorization import ACLHelper, Everyone
from pyramid.request import RequestLocalCache
from pyramid.security import Denied

from payportal.merchants import tokens
from payportal.merchants.authcache import AuthCache, KeyAuth, MerchantAuth
from payportal.merchants.models import ApiKey, Merchant
from payportal.security import CredentialKind, Identity, Permission

API_KEY_PREFIX = "sk_"
# the default permission: granted by no ACL, so a view that forgets its permission is closed
CLOSED = "closed:view-without-permission"
LAST_USED_SECONDS = 60
LAST_USED_RESOLUTION = sa.text(f"interval '{LAST_USED_SECONDS} seconds'")


def api_key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def bearer_token(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _touch_api_key(request, key_id) -> None:
    """last_used_at moves at most once a minute, so busy keys do not write on every request
    (and, remembered per process, do not even ask the database whether to)."""
    cache = request.registry.auth_cache
    now = time.monotonic()
    touched = cache.key_touched.get(key_id)
    if touched is not None and now - touched < LAST_USED_SECONDS:
        return
    session = request.dbsession
    result = session.execute(
        sa.update(ApiKey)
        .where(
            ApiKey.id == key_id,
            sa.or_(
                ApiKey.last_used_at.is_(None),
                ApiKey.last_used_at < sa.func.now() - LAST_USED_RESOLUTION,
            ),
        )
        .values(last_used_at=sa.func.now())
    )
    if result.rowcount:
        zope.sqlalchemy.mark_changed(session)
    if len(cache.key_touched) > 50_000:
        cache.key_touched.clear()
    cache.key_touched[key_id] = now


def identity_from_api_key(request, key: str) -> Identity | None:
    cache = request.registry.auth_cache
    digest = api_key_digest(key)
    found = cache.key(digest)
    if found is None:
        generation = cache.generation
        row = request.dbsession.execute(
            sa.select(ApiKey.id, ApiKey.merchant_id, Merchant.status)
            .join(Merchant, Merchant.id == ApiKey.merchant_id)
            .where(ApiKey.digest == digest, ApiKey.revoked_at.is_(None))
        ).first()
        if row is None:
            return None
        found = KeyAuth(key_id=row.id, merchant_id=row.merchant_id, status=str(row.status))
        cache.store_key(digest, found, generation)
    _touch_api_key(request, found.key_id)
    return Identity(
        kind=CredentialKind.API_KEY,
        merchant_id=found.merchant_id,
        merchant_status=found.status,
        credential_id=found.key_id,
    )


def identity_from_access_token(request, token: str) -> Identity | None:
    try:
        claims = tokens.decode_access(request.app_settings, token)
    except tokens.TokenError:
        return None
    cache = request.registry.auth_cache
    found = cache.merchant(claims.subject)
    if found is None:
        generation = cache.generation
        row = request.dbsession.execute(
            sa.select(Merchant.status, Merchant.password_changed_at).where(
                Merchant.id == claims.subject
            )
        ).first()
        if row is None:
            return None
        found = MerchantAuth(status=str(row.status), password_changed_at=row.password_changed_at)
        cache.store_merchant(claims.subject, found, generation)
    if claims.password_stamp != tokens.password_stamp(found.password_changed_at):
        return None  # issued before the last password change
    return Identity(
        kind=CredentialKind.ACCESS_TOKEN,
        merchant_id=claims.subject,
        merchant_status=found.status,
        credential_id=claims.jti,
    )


class PayportalSecurityPolicy:
    def __init__(self):
        self.acl = ACLHelper()
        self._cache = RequestLocalCache(self._load_identity)
        # slices may add more ways in (the dashboard adds its session cookie)
        self.identity_sources = []

    def _load_identity(self, request) -> Identity | None:
        token = bearer_token(request)
        identity = None
        if token is not None:
            if token.startswith(API_KEY_PREFIX):
                identity = identity_from_api_key(request, token)
            else:
                identity = identity_from_access_token(request, token)
        else:
            for source in self.identity_sources:
                identity = source(request)
                if identity is not None:
                    break
        if identity is not None and identity.merchant_id is not None:
            request._payportal_identity_for_log = str(identity.merchant_id)
        return identity

    def identity(self, request) -> Identity | None:
        return self._cache.get_or_create(request)

    def authenticated_userid(self, request) -> str | None:
        identity = self.identity(request)
        return identity.actor if identity is not None else None

    def permits(self, request, context, permission):
        identity = self.identity(request)
        if identity is None:
            return self.acl.permits(context, [Everyone], permission)
        if permission != Permission.PUBLIC and not identity.may(permission):
            return Denied(f"{identity.kind} credentials may not {permission}")
        return self.acl.permits(context, identity.__principals__(), permission)

    def remember(self, request, userid, **kw):
        return []

    def forget(self, request, **kw):
        return []


def includeme(config):
    policy = PayportalSecurityPolicy()
    config.registry.security_policy_impl = policy
    settings = config.registry.payportal_settings
    config.registry.auth_cache = AuthCache(settings.database_url, settings.auth_cache_seconds)
    config.set_security_policy(policy)
    # a view without an explicit permission is closed, never open by accident
    config.set_default_permission(CLOSED)
