"""Payments, their transitions (the timeline) and refunds."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from payportal.db import Audited, Base, UUIDPrimaryKey, pg_enum, utcnow


class PaymentStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    DISPUTED = "disputed"


class Gateway(StrEnum):
    INTERNAL = "internal"
    STRIPE = "stripe"
    PAYSTACK = "paystack"
    FLUTTERWAVE = "flutterwave"
    PAYPAL = "paypal"


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Payment(UUIDPrimaryKey, Audited, Base):
    __tablename__ = "payments"

    reference: Mapped[str] = mapped_column(sa.String(40), unique=True)
    merchant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("merchants.id", ondelete="RESTRICT")
    )
    payment_method_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("payment_methods.id", ondelete="SET NULL")
    )
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[PaymentStatus] = mapped_column(
        pg_enum(PaymentStatus, "payment_status"),
        server_default=PaymentStatus.PENDING.value,
        default=PaymentStatus.PENDING,
    )
    gateway: Mapped[Gateway] = mapped_column(
        pg_enum(Gateway, "payment_gateway"),
        server_default=Gateway.INTERNAL.value,
        default=Gateway.INTERNAL,
    )
    description: Mapped[str | None] = mapped_column(sa.String(1000))
    customer_email: Mapped[str | None] = mapped_column(sa.String(320))
    customer_name: Mapped[str | None] = mapped_column(sa.String(200))
    customer_phone: Mapped[str | None] = mapped_column(sa.String(40))
    metadata_: Mapped[dict] = mapped_column(
        "metadata", JSONB, server_default=sa.text("'{}'::jsonb"), default=dict
    )
    gateway_reference: Mapped[str | None] = mapped_column(sa.String(255))
    failure_code: Mapped[str | None] = mapped_column(sa.String(100))
    failure_reason: Mapped[str | None] = mapped_column(sa.String(1000))
    amount_refunded: Mapped[int] = mapped_column(sa.BigInteger, server_default="0", default=0)
    platform_fee: Mapped[int] = mapped_column(sa.BigInteger, server_default="0", default=0)
    gateway_fee: Mapped[int] = mapped_column(sa.BigInteger, server_default="0", default=0)
    # fixed when the payment completes: amount - fees; refunds lower it
    net_amount: Mapped[int | None] = mapped_column(sa.BigInteger)
    expires_at: Mapped[dt.datetime | None] = mapped_column()
    processing_at: Mapped[dt.datetime | None] = mapped_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column()
    failed_at: Mapped[dt.datetime | None] = mapped_column()
    cancelled_at: Mapped[dt.datetime | None] = mapped_column()
    expired_at: Mapped[dt.datetime | None] = mapped_column()
    refunded_at: Mapped[dt.datetime | None] = mapped_column()
    disputed_at: Mapped[dt.datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(server_default="1", default=1)

    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint(
            "amount_refunded >= 0 AND amount_refunded <= amount", name="refunds_within_amount"
        ),
        # keyset pages newest first, with and without the common filters
        sa.Index("ix_payments_merchant_id_created_at_id", "merchant_id", "created_at", "id"),
        sa.Index(
            "ix_payments_merchant_id_status_created_at_id",
            "merchant_id",
            "status",
            "created_at",
            "id",
        ),
        # text_pattern_ops: the same index serves customer_email = x and the q prefix
        # (LIKE 'x%'), whatever the database collation
        sa.Index(
            "ix_payments_merchant_id_customer_email_created_at_id",
            "merchant_id",
            "customer_email",
            "created_at",
            "id",
            postgresql_ops={"customer_email": "text_pattern_ops"},
        ),
        sa.Index(
            "ix_payments_merchant_id_reference_prefix",
            "merchant_id",
            "reference",
            postgresql_ops={"reference": "text_pattern_ops"},
        ),
        sa.Index("ix_payments_gateway_reference", "gateway", "gateway_reference"),
        # the expiry sweep reads only what is still pending
        sa.Index(
            "ix_payments_pending_expires_at",
            "expires_at",
            postgresql_where=sa.text("status = 'pending'"),
        ),
    )


class PaymentTransition(Base):
    """One step of a payment's life; the payment's version counts them."""

    __tablename__ = "payment_transitions"

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=sa.text("gen_random_uuid()"), default=uuid.uuid4
    )
    payment_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("payments.id", ondelete="CASCADE"))
    merchant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("merchants.id", ondelete="CASCADE")
    )
    from_status: Mapped[PaymentStatus | None] = mapped_column(
        pg_enum(PaymentStatus, "payment_status")
    )
    to_status: Mapped[PaymentStatus] = mapped_column(pg_enum(PaymentStatus, "payment_status"))
    source: Mapped[str] = mapped_column(sa.String(40))  # api, dashboard, webhook:<gw>, system
    actor: Mapped[str | None] = mapped_column(sa.String(120))
    reason: Mapped[str | None] = mapped_column(sa.String(1000))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=sa.func.now(), default=utcnow)

    __table_args__ = (
        sa.Index("ix_payment_transitions_payment_id_created_at", "payment_id", "created_at"),
    )


class Refund(UUIDPrimaryKey, Audited, Base):
    __tablename__ = "refunds"

    reference: Mapped[str] = mapped_column(sa.String(40), unique=True)
    payment_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("payments.id", ondelete="CASCADE"), index=True
    )
    merchant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    reason: Mapped[str | None] = mapped_column(sa.String(1000))
    status: Mapped[RefundStatus] = mapped_column(
        pg_enum(RefundStatus, "refund_status"),
        server_default=RefundStatus.SUCCEEDED.value,
        default=RefundStatus.SUCCEEDED,
    )
    source: Mapped[str] = mapped_column(sa.String(40), server_default="api", default="api")
    gateway_refund_id: Mapped[str | None] = mapped_column(sa.String(255))

    __table_args__ = (sa.CheckConstraint("amount > 0", name="amount_positive"),)
