"""Merchants, operators and their credentials: API keys, refresh tokens, sessions, audit log."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from payportal.db import Audited, Base, Timestamps, UUIDPrimaryKey, pg_enum, utcnow


class MerchantType(StrEnum):
    INDIVIDUAL = "individual"
    BUSINESS = "business"
    ENTERPRISE = "enterprise"


class MerchantStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    INACTIVE = "inactive"
    SUSPENDED = "suspended"


class Merchant(UUIDPrimaryKey, Audited, Base):
    __tablename__ = "merchants"

    name: Mapped[str] = mapped_column(sa.String(200))
    # Stored lower-cased: 'A@x.com' and 'a@x.com' are one account.
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(100))
    password_changed_at: Mapped[dt.datetime] = mapped_column(
        server_default=sa.func.now(), default=utcnow
    )
    merchant_type: Mapped[MerchantType] = mapped_column(pg_enum(MerchantType, "merchant_type"))
    status: Mapped[MerchantStatus] = mapped_column(
        pg_enum(MerchantStatus, "merchant_status"),
        server_default=MerchantStatus.PENDING.value,
        default=MerchantStatus.PENDING,
    )
    business_name: Mapped[str | None] = mapped_column(sa.String(200))
    business_id: Mapped[str | None] = mapped_column(sa.String(100), unique=True)
    phone: Mapped[str | None] = mapped_column(sa.String(40))
    address: Mapped[str | None] = mapped_column(sa.String(500))
    website: Mapped[str | None] = mapped_column(sa.String(500))
    country: Mapped[str | None] = mapped_column(sa.String(2))
    default_currency: Mapped[str] = mapped_column(sa.String(3), server_default="USD", default="USD")

    __table_args__ = (sa.Index("ix_merchants_status_created_at", "status", "created_at"),)


class Operator(UUIDPrimaryKey, Timestamps, Base):
    """Platform staff: created from the command line, sign in to /admin."""

    __tablename__ = "operators"

    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    password_hash: Mapped[str] = mapped_column(sa.String(100))
    is_active: Mapped[bool] = mapped_column(server_default=sa.true(), default=True)
    last_login_at: Mapped[dt.datetime | None] = mapped_column()


class ApiKey(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "api_keys"

    merchant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(100))
    prefix: Mapped[str] = mapped_column(sa.String(16))  # shown to humans: 'sk_AbCd1234'
    digest: Mapped[str] = mapped_column(sa.String(64), unique=True)  # SHA-256 hex of the key
    last_used_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class RefreshToken(Base):
    """One refresh JWT; a family is one login's chain of rotations."""

    __tablename__ = "refresh_tokens"

    jti: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    merchant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    issued_at: Mapped[dt.datetime] = mapped_column(server_default=sa.func.now(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    used_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class LoginFailure(Base):
    """Failed sign-ins by email, for throttling that holds across processes."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320))
    realm: Mapped[str] = mapped_column(sa.String(20), server_default="merchant", default="merchant")
    failed_at: Mapped[dt.datetime] = mapped_column(server_default=sa.func.now(), default=utcnow)

    __table_args__ = (sa.Index("ix_login_failures_email_failed_at", "email", "failed_at"),)


class PasswordResetToken(UUIDPrimaryKey, Base):
    __tablename__ = "password_reset_tokens"

    merchant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    digest: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=sa.func.now(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    used_at: Mapped[dt.datetime | None] = mapped_column()


class DashboardSession(Base):
    """A server-side browser session; the cookie holds a random id, the row its SHA-256."""

    __tablename__ = "dashboard_sessions"

    digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    merchant_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    operator_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=sa.func.now(), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(server_default=sa.func.now(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        sa.CheckConstraint("(merchant_id IS NULL) <> (operator_id IS NULL)", name="one_owner"),
    )


class AuditEntry(UUIDPrimaryKey, Base):
    """Who did what to an account: status changes, password changes, key revocations."""

    __tablename__ = "audit_log"

    merchant_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("merchants.id", ondelete="CASCADE")
    )
    actor: Mapped[str] = mapped_column(sa.String(120))
    action: Mapped[str] = mapped_column(sa.String(60))
    from_value: Mapped[str | None] = mapped_column(sa.String(60))
    to_value: Mapped[str | None] = mapped_column(sa.String(60))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    data: Mapped[dict] = mapped_column(JSONB, server_default=sa.text("'{}'::jsonb"), default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=sa.func.now(), default=utcnow)

    __table_args__ = (sa.Index("ix_audit_log_merchant_id_created_at", "merchant_id", "created_at"),)
