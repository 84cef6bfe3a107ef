"""Credentials a merchant holds: access/refresh token pairs (with rotation) and API keys.

Every change to a merchant's refresh tokens first locks the merchant row (FOR NO KEY UPDATE,
which foreign-key checks from payments and events do not wait for). So a rotation, a reuse
revocation, a logout and a password change of one merchant take turns, and a rotation can
never slip a fresh token past a password change that revokes them all.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
import zope.sqlalchemy

from payportal.db import utcnow
from payportal.errors import AuthenticationFailed, NotFound
from payportal.merchants import tokens
from payportal.merchants.audit import record_audit
from payportal.merchants.authcache import forget_after_commit
from payportal.merchants.models import ApiKey, Merchant, RefreshToken
from payportal.merchants.policy import API_KEY_PREFIX, api_key_digest
from payportal.pagination import keyset_page

# 'sk_' + 8 characters: enough for a person to tell their keys apart, useless to an attacker
API_KEY_PREFIX_LENGTH = len(API_KEY_PREFIX) + 8
API_KEY_RANDOM_BYTES = 32


class RecordedFailure:
    """A failure whose bookkeeping is already in the session (a failed sign-in counted, a token
    family revoked): the caller answers it without raising, so its transaction still commits."""


class InvalidRefreshToken(AuthenticationFailed):
    code = "invalid_refresh_token"

    def __init__(self):
        super().__init__("refresh token is invalid, expired, used or revoked")


class RefreshTokenReused(RecordedFailure, InvalidRefreshToken):
    """A used refresh token came back: someone holds a copy, so its whole family is revoked."""


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


def lock_merchant(session, merchant_id: uuid.UUID) -> Merchant | None:
    """The merchant row, freshly read and locked until the transaction ends."""
    return session.execute(
        sa.select(Merchant)
        .where(Merchant.id == merchant_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def issue_token_pair(
    session, settings, merchant: Merchant, *, family_id: uuid.UUID | None = None
) -> TokenPair:
    """A new access token and a refresh token (a new family unless one is continued)."""
    now = utcnow()
    family_id = family_id or uuid.uuid4()
    access, _ = tokens.issue(
        settings,
        tokens.ACCESS,
        merchant.id,
        password_changed_at=merchant.password_changed_at,
        now=now,
    )
    refresh, claims = tokens.issue(
        settings, tokens.REFRESH, merchant.id, family_id=family_id, now=now
    )
    session.add(
        RefreshToken(
            jti=claims.jti,
            merchant_id=merchant.id,
            family_id=family_id,
            issued_at=now,
            expires_at=claims.expires_at,
        )
    )
    session.flush()
    return TokenPair(access, refresh, settings.jwt_expires_in)


def _decode_refresh(settings, refresh_token: str) -> tokens.TokenClaims:
    try:
        claims = tokens.decode(settings, refresh_token, tokens.REFRESH)
    except tokens.TokenError:
        raise InvalidRefreshToken() from None
    if claims.family_id is None:
        raise InvalidRefreshToken()
    return claims


def _revoke(session, *conditions) -> int:
    result = session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.revoked_at.is_(None), *conditions)
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    zope.sqlalchemy.mark_changed(session)
    return result.rowcount or 0


def refresh_tokens(session, settings, refresh_token: str) -> TokenPair:
    """Trade a refresh token for a new pair; each refresh token works once.

    Raises InvalidRefreshToken, or RefreshTokenReused after revoking the token's whole family
    in `session` (a RecordedFailure: commit it).
    """
    claims = _decode_refresh(settings, refresh_token)
    merchant = lock_merchant(session, claims.subject)
    if merchant is None:
        raise InvalidRefreshToken()
    presented = session.execute(
        sa.select(RefreshToken)
        .where(RefreshToken.jti == claims.jti, RefreshToken.merchant_id == merchant.id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if presented is None or presented.revoked_at is not None:
        raise InvalidRefreshToken()
    if presented.used_at is not None:
        _revoke(session, RefreshToken.family_id == presented.family_id)
        raise RefreshTokenReused()
    if presented.expires_at <= utcnow():
        raise InvalidRefreshToken()
    presented.used_at = utcnow()
    return issue_token_pair(session, settings, merchant, family_id=presented.family_id)


def revoke_family(session, settings, refresh_token: str) -> None:
    """Sign out one login: its refresh token, earlier and later ones alike, stop working."""
    claims = _decode_refresh(settings, refresh_token)
    merchant = lock_merchant(session, claims.subject)
    family_id = merchant is not None and session.scalar(
        sa.select(RefreshToken.family_id).where(
            RefreshToken.jti == claims.jti, RefreshToken.merchant_id == merchant.id
        )
    )
    if not family_id:
        raise InvalidRefreshToken()
    _revoke(session, RefreshToken.family_id == family_id)


def revoke_all_refresh_tokens(session, merchant_id: uuid.UUID) -> int:
    """Every refresh token of the merchant stops working (password change or reset).

    The caller holds the merchant's lock (see lock_merchant)."""
    return _revoke(session, RefreshToken.merchant_id == merchant_id)


@dataclass(frozen=True)
class NewApiKey:
    row: ApiKey
    key: str  # the only time the secret exists outside the client's hands


def create_api_key(session, merchant_id: uuid.UUID, name: str, *, actor: str) -> NewApiKey:
    """A new secret key; only its SHA-256 digest and a short prefix are stored."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(API_KEY_RANDOM_BYTES)
    row = ApiKey(
        merchant_id=merchant_id,
        name=name,
        prefix=key[:API_KEY_PREFIX_LENGTH],
        digest=api_key_digest(key),
    )
    session.add(row)
    session.flush()
    record_audit(
        session,
        merchant_id=merchant_id,
        actor=actor,
        action="api_key.created",
        data={"api_key_id": str(row.id), "name": name, "prefix": row.prefix},
    )
    return NewApiKey(row, key)


def get_api_key(session, merchant_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
    """One of this merchant's keys that still works (a revoked key is gone)."""
    return session.execute(
        sa.select(ApiKey).where(
            ApiKey.id == key_id, ApiKey.merchant_id == merchant_id, ApiKey.revoked_at.is_(None)
        )
    ).scalar_one_or_none()


def revoke_api_key(session, merchant_id: uuid.UUID, key_id: uuid.UUID, *, actor: str) -> None:
    """Revoke at once: the very next request with the key is refused."""
    revoked = session.execute(
        sa.update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.merchant_id == merchant_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(ApiKey.prefix)
        .execution_options(synchronize_session=False)
    ).first()
    if revoked is None:
        raise NotFound("no such API key")
    zope.sqlalchemy.mark_changed(session)
    forget_after_commit(session, merchant_id)
    record_audit(
        session,
        merchant_id=merchant_id,
        actor=actor,
        action="api_key.revoked",
        data={"api_key_id": str(key_id), "prefix": revoked.prefix},
    )


def list_api_keys(
    session, merchant_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[ApiKey], bool, str | None]:
    """This merchant's working keys, newest first, one page."""
    stmt = sa.select(ApiKey).where(ApiKey.merchant_id == merchant_id, ApiKey.revoked_at.is_(None))
    return keyset_page(session, stmt, ApiKey, limit, cursor)
