"""The transactional outbox, and merchants' webhook endpoints with every delivery attempt."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from payportal.db import Audited, Base, SoftDeleted, UUIDPrimaryKey, pg_enum, utcnow


class OutboxEvent(Base):
    """One event; its id is also the SQS MessageDeduplicationId."""

    __tablename__ = "outbox_events"

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=sa.text("gen_random_uuid()"), default=uuid.uuid4
    )
    merchant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("merchants.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(sa.String(64))
    payment_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    data: Mapped[dict] = mapped_column(JSONB)
    correlation_id: Mapped[str | None] = mapped_column(sa.String(128))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=sa.func.now(), default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(server_default="0", default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(
        server_default=sa.func.now(), default=utcnow
    )
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    # set once the worker has fanned the event out into webhook deliveries
    dispatched_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        sa.Index("ix_outbox_events_merchant_id_created_at_id", "merchant_id", "created_at", "id"),
        sa.Index(
            "ix_outbox_events_merchant_id_type_created_at_id",
            "merchant_id",
            "type",
            "created_at",
            "id",
        ),
        sa.Index(
            "ix_outbox_events_unpublished",
            "next_attempt_at",
            postgresql_where=sa.text("published_at IS NULL"),
        ),
        sa.Index(
            "ix_outbox_events_undispatched",
            "created_at",
            postgresql_where=sa.text("dispatched_at IS NULL"),
        ),
    )


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookEndpoint(UUIDPrimaryKey, Audited, SoftDeleted, Base):
    __tablename__ = "webhook_endpoints"

    merchant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("merchants.id", ondelete="CASCADE")
    )
    url: Mapped[str] = mapped_column(sa.String(2000))
    description: Mapped[str | None] = mapped_column(sa.String(500))
    events: Mapped[list[str]] = mapped_column(ARRAY(sa.String(64)))
    enabled: Mapped[bool] = mapped_column(server_default=sa.true(), default=True)
    sealed_secret: Mapped[str] = mapped_column(sa.Text)

    __table_args__ = (
        sa.Index(
            "ix_webhook_endpoints_merchant_id_created_at_id", "merchant_id", "created_at", "id"
        ),
    )


class WebhookDelivery(UUIDPrimaryKey, Base):
    """One event for one endpoint, until it is delivered or given up on."""

    __tablename__ = "webhook_deliveries"

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    merchant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("merchants.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("outbox_events.id", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[DeliveryStatus] = mapped_column(
        pg_enum(DeliveryStatus, "delivery_status"),
        server_default=DeliveryStatus.PENDING.value,
        default=DeliveryStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(server_default="0", default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(
        server_default=sa.func.now(), default=utcnow
    )
    last_status_code: Mapped[int | None] = mapped_column(sa.SmallInteger)
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    delivered_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(server_default=sa.func.now(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        server_default=sa.func.now(), default=utcnow, onupdate=utcnow
    )

    __table_args__ = (
        sa.UniqueConstraint("endpoint_id", "event_id"),
        sa.Index(
            "ix_webhook_deliveries_endpoint_id_created_at_id", "endpoint_id", "created_at", "id"
        ),
        sa.Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending'"),
        ),
    )


class WebhookDeliveryAttempt(UUIDPrimaryKey, Base):
    __tablename__ = "webhook_delivery_attempts"

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    attempted_at: Mapped[dt.datetime] = mapped_column(server_default=sa.func.now(), default=utcnow)
    status_code: Mapped[int | None] = mapped_column(sa.SmallInteger)
    latency_ms: Mapped[int | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(sa.String(1000))
    next_retry_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        sa.Index(
            "ix_webhook_delivery_attempts_delivery_id_attempted_at", "delivery_id", "attempted_at"
        ),
    )
