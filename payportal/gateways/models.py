"""What gateways told us: every verified inbound webhook, for dedup, ordering and audit."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from payportal.db import Base, UUIDPrimaryKey, utcnow


class WebhookOutcome(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    PARKED = "parked"  # arrived before the state it needs; applied after the next transition
    IGNORED = "ignored"  # can never apply (terminal state, unknown reference, unhandled type)
    MISMATCH = "mismatch"  # amount or currency differ from the payment's


class GatewayWebhook(UUIDPrimaryKey, Base):
    __tablename__ = "gateway_webhooks"

    gateway: Mapped[str] = mapped_column(sa.String(20))
    gateway_event_id: Mapped[str] = mapped_column(sa.String(255))
    event_type: Mapped[str] = mapped_column(sa.String(100))
    signature_valid: Mapped[bool] = mapped_column()
    payload: Mapped[dict] = mapped_column(JSONB)
    reference: Mapped[str | None] = mapped_column(sa.String(100))
    payment_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("payments.id", ondelete="SET NULL"), index=True
    )
    merchant_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("merchants.id", ondelete="CASCADE")
    )
    target_status: Mapped[str | None] = mapped_column(sa.String(30))
    outcome: Mapped[str | None] = mapped_column(sa.String(20))
    outcome_detail: Mapped[str | None] = mapped_column(sa.String(500))
    received_at: Mapped[dt.datetime] = mapped_column(server_default=sa.func.now(), default=utcnow)
    processed_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        sa.UniqueConstraint("gateway", "gateway_event_id"),
        sa.Index(
            "ix_gateway_webhooks_parked",
            "payment_id",
            "received_at",
            postgresql_where=sa.text("outcome = 'parked'"),
        ),
    )
