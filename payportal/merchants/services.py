"""Merchant and operator accounts: sign-up, sign-in, profile, passwords, status changes.

Framework-free: every function takes a SQLAlchemy session (and settings) and returns domain
objects or raises payportal errors. Token pairs and API keys live in credentials.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
import zope.sqlalchemy
from sqlalchemy.exc import IntegrityError

from payportal.db import utcnow
from payportal.errors import AuthenticationFailed, Conflict, NotFound, ValidationFailed
from payportal.events.services import append_event
from payportal.merchants import mail, throttle
from payportal.merchants.audit import record_audit
from payportal.merchants.authcache import forget_after_commit
from payportal.merchants.credentials import (
    RecordedFailure,
    lock_merchant,
    revoke_all_refresh_tokens,
)
from payportal.merchants.models import (
    AuditEntry,
    Merchant,
    MerchantStatus,
    MerchantType,
    Operator,
    PasswordResetToken,
)
from payportal.merchants.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    burn_equal_time,
    hash_password,
    needs_rehash,
    verify_password,
)
from payportal.merchants.schemas import MerchantOut

MERCHANT_REALM = "merchant"
OPERATOR_REALM = "operator"
RESET_TOKEN_LIFETIME = dt.timedelta(minutes=30)
# unused reset links a merchant may hold at once: more requests send nothing (no mail bombing)
MAX_OPEN_RESETS = 3
# constraint name -> the request field it protects
UNIQUE_FIELDS = {
    "uq_merchants_email": "email",
    "uq_merchants_business_id": "business_id",
    "uq_operators_email": "email",
}


class DuplicateAccount(Conflict):
    def __init__(self, field: str):
        super().__init__(
            f"an account with this {field} already exists",
            code=f"duplicate_{field}",
            details=[{"field": field, "message": "already registered"}],
        )
        self.field = field


class InvalidCredentials(RecordedFailure, AuthenticationFailed):
    """Wrong email or password: one answer for both, so emails cannot be probed."""

    code = "invalid_credentials"

    def __init__(self):
        super().__init__("email or password is incorrect")


class WrongCurrentPassword(RecordedFailure, ValidationFailed):
    code = "invalid_current_password"

    def __init__(self):
        super().__init__(
            "current_password is incorrect",
            details=[{"field": "current_password", "message": "is incorrect"}],
        )


class InvalidResetToken(ValidationFailed):
    code = "invalid_reset_token"

    def __init__(self):
        super().__init__(
            "this password reset link is invalid, used or expired",
            details=[{"field": "token", "message": "invalid, used or expired"}],
        )


def normalize_email(email: str) -> str:
    """One spelling per address: 'A@x.com' and 'a@x.com' are one account."""
    return email.strip().lower()


def _hash(settings, password: str) -> str:
    return hash_password(password, pepper=settings.password_pepper, rounds=settings.bcrypt_rounds)


def _check_password_policy(password: str, field: str = "password") -> None:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise ValidationFailed(
            f"{field} must be {MIN_LENGTH} to {MAX_LENGTH} characters long",
            details=[{"field": field, "message": f"{MIN_LENGTH} to {MAX_LENGTH} characters"}],
        )


def _insert_unique(session, row) -> None:
    """Insert in a savepoint, so losing a race on a unique column is a 409 naming the field
    and leaves the caller's transaction usable."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
        if constraint in UNIQUE_FIELDS:
            raise DuplicateAccount(UNIQUE_FIELDS[constraint]) from None
        raise


def merchant_event_data(merchant: Merchant) -> dict[str, Any]:
    return MerchantOut.model_validate(merchant).model_dump(mode="json")


def get_merchant_by_email(session, email: str) -> Merchant | None:
    return session.execute(
        sa.select(Merchant).where(Merchant.email == normalize_email(email))
    ).scalar_one_or_none()


def register_merchant(
    session,
    settings,
    *,
    name: str,
    email: str,
    password: str,
    merchant_type: MerchantType | str,
    **profile: Any,
) -> Merchant:
    """A new merchant: pending until an operator approves it (active at once with auto_activate).

    `profile`: business_name, business_id, phone, address, website, country.
    Raises DuplicateAccount (409) naming email or business_id.
    """
    _check_password_policy(password)
    email = normalize_email(email)
    if get_merchant_by_email(session, email) is not None:
        raise DuplicateAccount("email")
    business_id = profile.get("business_id")
    if business_id is not None and session.scalar(
        sa.select(Merchant.id).where(Merchant.business_id == business_id)
    ):
        raise DuplicateAccount("business_id")
    merchant_id = uuid.uuid4()
    actor = f"merchant:{merchant_id}"
    status = MerchantStatus.ACTIVE if settings.auto_activate else MerchantStatus.PENDING
    merchant = Merchant(
        id=merchant_id,
        name=name,
        email=email,
        password_hash=_hash(settings, password),
        password_changed_at=utcnow(),
        merchant_type=MerchantType(merchant_type),
        status=status,
        created_by=actor,
        updated_by=actor,
        **profile,
    )
    _insert_unique(session, merchant)
    record_audit(
        session,
        merchant_id=merchant.id,
        actor=actor,
        action="merchant.registered",
        to_value=str(status),
        reason="auto_activate" if settings.auto_activate else None,
    )
    return merchant


def authenticate_merchant(session, settings, email: str, password: str) -> Merchant:
    """The merchant with this email and password, whatever its status.

    Raises RateLimited (429) after too many recent failures for the email, or
    InvalidCredentials after counting one more (a RecordedFailure: commit it).
    """
    email = normalize_email(email)
    throttle.check_login_allowed(session, email, realm=MERCHANT_REALM)
    merchant = session.execute(
        sa.select(Merchant)
        .where(Merchant.email == email)
        # a password change running now finishes first, and its new hash is the one checked
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if not _password_matches(settings, merchant, password):
        throttle.record_login_failure(session, email, realm=MERCHANT_REALM)
        raise InvalidCredentials()
    if needs_rehash(merchant.password_hash, rounds=settings.bcrypt_rounds):
        merchant.password_hash = _hash(settings, password)
    return merchant


def _password_matches(settings, account: Merchant | Operator | None, password: str) -> bool:
    pepper = settings.password_pepper
    if account is None:
        # an unknown email costs what a known one does: no timing oracle for who has an account
        burn_equal_time(password, pepper=pepper, rounds=settings.bcrypt_rounds)
        return False
    return verify_password(password, account.password_hash, pepper=pepper)


def update_profile(session, merchant: Merchant, changes: dict[str, Any], *, actor: str) -> Merchant:
    """Apply the profile fields given (name, phone, address, website, business_name)."""
    if changes:
        for field, value in changes.items():
            setattr(merchant, field, value)
        merchant.updated_by = actor
        session.flush()
        if "name" in changes:
            forget_after_commit(session, merchant.id)  # the dashboard's sidebar shows it
    return merchant


def _set_password(session, settings, merchant: Merchant, new_password: str, actor: str) -> None:
    """New hash and stamp (older access tokens and browser sessions stop working), and every
    refresh token revoked. The caller holds the merchant's lock."""
    _check_password_policy(new_password, "new_password")
    merchant.password_hash = _hash(settings, new_password)
    merchant.password_changed_at = utcnow()
    merchant.updated_by = actor
    revoke_all_refresh_tokens(session, merchant.id)
    session.flush()
    forget_after_commit(session, merchant.id)


def change_password(
    session,
    settings,
    merchant_id: uuid.UUID,
    current_password: str,
    new_password: str,
    *,
    actor: str,
) -> None:
    """Set a new password after checking the current one (throttled like sign-ins, so a stolen
    access token cannot be used to guess it). Raises WrongCurrentPassword (a RecordedFailure)."""
    email = session.scalar(sa.select(Merchant.email).where(Merchant.id == merchant_id))
    if email is None:
        raise NotFound("no such merchant")
    throttle.check_login_allowed(session, email, realm=MERCHANT_REALM)
    merchant = lock_merchant(session, merchant_id)
    if not _password_matches(settings, merchant, current_password):
        throttle.record_login_failure(session, email, realm=MERCHANT_REALM)
        raise WrongCurrentPassword()
    _set_password(session, settings, merchant, new_password, actor)
    record_audit(session, merchant_id=merchant.id, actor=actor, action="password.changed")


def _reset_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_password_reset(session, settings, email: str) -> EmailMessage | None:
    """A single-use reset link valid 30 minutes, as the mail to send once this commits; None
    when there is no such account (the caller answers the same either way)."""
    merchant = get_merchant_by_email(session, email)
    if merchant is None:
        return None
    now = utcnow()
    open_links = session.scalar(
        sa.select(sa.func.count())
        .select_from(PasswordResetToken)
        .where(
            PasswordResetToken.merchant_id == merchant.id,
            PasswordResetToken.used_at.is_(None),
            PasswordResetToken.expires_at > now,
        )
    )
    if open_links >= MAX_OPEN_RESETS:
        return None
    token = secrets.token_urlsafe(32)
    session.add(
        PasswordResetToken(
            merchant_id=merchant.id,
            digest=_reset_digest(token),
            created_at=now,
            expires_at=now + RESET_TOKEN_LIFETIME,
        )
    )
    session.flush()
    return mail.compose(
        settings,
        to=merchant.email,
        subject="Reset your payportal password",
        template="password_reset.txt.jinja2",
        name=merchant.name,
        email=merchant.email,
        reset_url=f"{settings.public_url.rstrip('/')}/dashboard/reset-password?token={token}",
        valid_minutes=int(RESET_TOKEN_LIFETIME.total_seconds() // 60),
    )


def reset_password(session, settings, token: str, new_password: str) -> Merchant:
    """Use a reset link once: new password, every refresh token, access token and browser
    session of the merchant ended, the merchant's other reset links spent."""
    now = utcnow()
    merchant_id = session.scalar(
        sa.update(PasswordResetToken)
        .where(
            PasswordResetToken.digest == _reset_digest(token),
            PasswordResetToken.used_at.is_(None),
            PasswordResetToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(PasswordResetToken.merchant_id)
    )
    if merchant_id is None:
        raise InvalidResetToken()
    zope.sqlalchemy.mark_changed(session)
    merchant = lock_merchant(session, merchant_id)
    actor = f"merchant:{merchant_id}"
    _set_password(session, settings, merchant, new_password, actor)
    session.execute(
        sa.update(PasswordResetToken)
        .where(PasswordResetToken.merchant_id == merchant_id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
    )
    record_audit(session, merchant_id=merchant_id, actor=actor, action="password.reset")
    return merchant


def change_merchant_status(
    session,
    merchant: Merchant,
    new_status: MerchantStatus | str,
    *,
    actor: str,
    reason: str | None = None,
    correlation_id: str | None = None,
) -> AuditEntry | None:
    """Move a merchant to another status: audit entry and merchant.status_changed event in the
    caller's transaction. None when it already has that status (nothing is recorded)."""
    new_status = MerchantStatus(new_status)
    locked = lock_merchant(session, merchant.id)
    if locked is None:
        raise NotFound("no such merchant")
    previous = MerchantStatus(locked.status)
    if previous == new_status:
        return None
    locked.status = new_status
    locked.updated_by = actor
    session.flush()
    forget_after_commit(session, locked.id)
    entry = record_audit(
        session,
        merchant_id=locked.id,
        actor=actor,
        action="merchant.status_changed",
        from_value=str(previous),
        to_value=str(new_status),
        reason=reason,
    )
    append_event(
        session,
        merchant_id=locked.id,
        type="merchant.status_changed",
        data={**merchant_event_data(locked), "previous_status": str(previous)},
        correlation_id=correlation_id,
    )
    session.flush()
    return entry


def create_operator(
    session, settings, *, email: str, password: str, name: str | None = None
) -> Operator:
    """A platform staff account (created from the command line). Raises DuplicateAccount."""
    _check_password_policy(password)
    operator = Operator(
        email=normalize_email(email), name=name, password_hash=_hash(settings, password)
    )
    _insert_unique(session, operator)
    return operator


def authenticate_operator(session, settings, email: str, password: str) -> Operator:
    """The active operator with this email and password; throttled like merchant sign-ins.

    Raises RateLimited, or InvalidCredentials (a RecordedFailure: commit it)."""
    email = normalize_email(email)
    throttle.check_login_allowed(session, email, realm=OPERATOR_REALM)
    operator = session.execute(
        sa.select(Operator).where(Operator.email == email, Operator.is_active)
    ).scalar_one_or_none()
    if not _password_matches(settings, operator, password):
        throttle.record_login_failure(session, email, realm=OPERATOR_REALM)
        raise InvalidCredentials()
    operator.last_login_at = utcnow()
    if needs_rehash(operator.password_hash, rounds=settings.bcrypt_rounds):
        operator.password_hash = _hash(settings, password)
    return operator
