"""Payment methods: display fields in clear, sensitive fields sealed with AES-256-GCM."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from payportal.db import Audited, Base, SoftDeleted, UUIDPrimaryKey, pg_enum, utcnow


class PaymentMethodType(StrEnum):
    CARD = "card"
    BANK_ACCOUNT = "bank_account"
    MOBILE_MONEY = "mobile_money"
    CRYPTO = "crypto"
    PAYPAL = "paypal"
    STRIPE = "stripe"


class PaymentMethodStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    EXPIRED = "expired"
    BLOCKED = "blocked"


# Statuses a lapsed expiry date overrides; `blocked` (and `expired` itself) stay as they are.
LAPSING_STATUSES = (PaymentMethodStatus.ACTIVE, PaymentMethodStatus.INACTIVE)


class PaymentMethod(UUIDPrimaryKey, Audited, SoftDeleted, Base):
    __tablename__ = "payment_methods"

    merchant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("merchants.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(sa.String(100))
    type: Mapped[PaymentMethodType] = mapped_column(
        pg_enum(PaymentMethodType, "payment_method_type")
    )
    status: Mapped[PaymentMethodStatus] = mapped_column(
        pg_enum(PaymentMethodStatus, "payment_method_status"),
        server_default=PaymentMethodStatus.ACTIVE.value,
        default=PaymentMethodStatus.ACTIVE,
    )
    is_default: Mapped[bool] = mapped_column(server_default=sa.false(), default=False)
    brand: Mapped[str | None] = mapped_column(sa.String(20))
    last4: Mapped[str | None] = mapped_column(sa.String(4))
    exp_month: Mapped[int | None] = mapped_column(sa.SmallInteger)
    exp_year: Mapped[int | None] = mapped_column(sa.SmallInteger)
    holder_name: Mapped[str | None] = mapped_column(sa.String(200))
    bank_name: Mapped[str | None] = mapped_column(sa.String(200))
    provider: Mapped[str | None] = mapped_column(sa.String(100))
    # JSON of the sensitive fields (card number, account number, phone), sealed; see crypto.py
    sealed_details: Mapped[str | None] = mapped_column(sa.Text)
    external_id: Mapped[str | None] = mapped_column(sa.String(255))
    external_provider: Mapped[str | None] = mapped_column(sa.String(100))
    metadata_: Mapped[dict] = mapped_column(
        "metadata", JSONB, server_default=sa.text("'{}'::jsonb"), default=dict
    )
    expires_at: Mapped[dt.datetime | None] = mapped_column()

    @property
    def effective_status(self) -> PaymentMethodStatus:
        """The status as of now: a card whose month has ended is `expired`, whatever is stored."""
        if (
            self.status in LAPSING_STATUSES
            and self.expires_at is not None
            and self.expires_at <= utcnow()
        ):
            return PaymentMethodStatus.EXPIRED
        return PaymentMethodStatus(self.status)

    @classmethod
    def effective_status_is(cls, status: PaymentMethodStatus | str) -> sa.ColumnElement[bool]:
        """The same rule as a WHERE clause, so `?status=expired` and the response agree; written
        per status so the (merchant_id, status, created_at, id) index serves it in order."""
        status = PaymentMethodStatus(status)
        if status is PaymentMethodStatus.EXPIRED:
            return sa.or_(
                cls.status == status,
                sa.and_(cls.status.in_(LAPSING_STATUSES), cls.expires_at <= sa.func.now()),
            )
        if status in LAPSING_STATUSES:
            return sa.and_(
                cls.status == status,
                sa.or_(cls.expires_at.is_(None), cls.expires_at > sa.func.now()),
            )
        return cls.status == status

    __table_args__ = (
        # exactly one default per merchant, among methods that are not deleted
        sa.Index(
            "uq_payment_methods_one_default",
            "merchant_id",
            unique=True,
            postgresql_where=sa.text("is_default AND deleted_at IS NULL"),
        ),
        # the list pages, newest first, over the merchant's live methods (optionally one type)
        sa.Index(
            "ix_payment_methods_merchant_id_created_at_id",
            "merchant_id",
            "created_at",
            "id",
            postgresql_where=sa.text("deleted_at IS NULL"),
        ),
        sa.Index(
            "ix_payment_methods_merchant_id_type_created_at_id",
            "merchant_id",
            "type",
            "created_at",
            "id",
            postgresql_where=sa.text("deleted_at IS NULL"),
        ),
        sa.Index(
            "ix_payment_methods_merchant_id_status_created_at_id",
            "merchant_id",
            "status",
            "created_at",
            "id",
            postgresql_where=sa.text("deleted_at IS NULL"),
        ),
    )
