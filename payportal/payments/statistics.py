"""Payment statistics: counts and sums by status and currency, aggregated in PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from payportal.db import utcnow
from payportal.payments.models import Payment
from payportal.payments.schemas import CurrencyTotals, StatisticsSummary, StatusTotals
from payportal.payments.state import SETTLED

DEFAULT_PERIOD = dt.timedelta(days=30)


def payment_summary(
    session,
    merchant_id: uuid.UUID,
    *,
    created_from: dt.datetime | None = None,
    created_to: dt.datetime | None = None,
    currency: str | None = None,
) -> StatisticsSummary:
    """One scan of the merchant's payments created in [from, to): per (currency, status) and
    per currency (GROUPING SETS), so the totals always add up to the rows above them."""
    created_to = created_to or utcnow()
    created_from = created_from or created_to - DEFAULT_PERIOD
    settled = Payment.status.in_(SETTLED)
    is_per_currency = sa.func.grouping(Payment.status)
    stmt = (
        sa.select(
            Payment.currency,
            Payment.status,
            is_per_currency.label("per_currency"),
            sa.func.count().label("count"),
            sa.func.coalesce(sa.func.sum(Payment.amount), 0).label("amount"),
            sa.func.count().filter(settled).label("settled_count"),
            sa.func.coalesce(sa.func.sum(Payment.amount).filter(settled), 0).label(
                "settled_amount"
            ),
            sa.func.coalesce(sa.func.sum(Payment.amount_refunded), 0).label("amount_refunded"),
            sa.func.coalesce(
                sa.func.sum(Payment.platform_fee + Payment.gateway_fee).filter(settled), 0
            ).label("fee"),
            sa.func.coalesce(sa.func.sum(Payment.net_amount).filter(settled), 0).label(
                "net_amount"
            ),
        )
        .where(
            Payment.merchant_id == merchant_id,
            Payment.created_at >= created_from,
            Payment.created_at < created_to,
        )
        .group_by(
            sa.func.grouping_sets(
                sa.tuple_(Payment.currency, Payment.status), sa.tuple_(Payment.currency)
            )
        )
        .order_by(Payment.currency, Payment.status)
    )
    if currency is not None:
        stmt = stmt.where(Payment.currency == currency)
    by_status: list[StatusTotals] = []
    by_currency: list[CurrencyTotals] = []
    for row in session.execute(stmt):
        if row.per_currency:
            by_currency.append(
                CurrencyTotals(
                    currency=row.currency,
                    count=row.count,
                    settled_count=row.settled_count,
                    settled_amount=int(row.settled_amount),
                    amount_refunded=int(row.amount_refunded),
                    fee=int(row.fee),
                    net_amount=int(row.net_amount),
                )
            )
        else:
            by_status.append(
                StatusTotals(
                    status=str(row.status),
                    currency=row.currency,
                    count=row.count,
                    amount=int(row.amount),
                )
            )
    return StatisticsSummary(
        created_from=created_from,
        created_to=created_to,
        currency=currency,
        by_status=by_status,
        by_currency=by_currency,
    )
