"""Reading the payments rollup (payportal/portal/models.py): per merchant, what was created in
a period, by hour or day, currency and status — the totals folded in at commit plus the reading
transaction's own deltas not yet folded."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa

from payportal.payments.models import PaymentStatus
from payportal.payments.state import SETTLED
from payportal.portal.models import PaymentHourlyTotal, PaymentTotalDelta

# a payment still on its way has no outcome yet: it counts neither for nor against the rate
UNDECIDED = frozenset({PaymentStatus.PENDING.value, PaymentStatus.PROCESSING.value})
SETTLED_VALUES = frozenset(s.value for s in SETTLED)


def _rollup(merchant_ids: list[uuid.UUID], start: dt.datetime):
    """Totals and pending deltas of the merchants since `start` (an hour boundary)."""
    totals, deltas = PaymentHourlyTotal, PaymentTotalDelta
    return sa.union_all(
        sa.select(
            totals.merchant_id, totals.hour, totals.currency, totals.status,
            totals.payments, totals.amount,
        ).where(totals.merchant_id.in_(merchant_ids), totals.hour >= start),
        sa.select(
            deltas.merchant_id, deltas.hour, deltas.currency, deltas.status,
            deltas.payments, deltas.amount,
        ).where(deltas.merchant_id.in_(merchant_ids), deltas.hour >= start),
    ).subquery()  # fmt: skip


@dataclass
class CurrencyVolume:
    currency: str
    settled_amount: int = 0
    settled_count: int = 0


@dataclass
class PeriodTotals:
    """One period of one merchant, from the grouped rows."""

    count: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_currency: dict[str, CurrencyVolume] = field(default_factory=dict)
    # (bucket start, currency) -> settled amount
    settled_by_bucket: dict[tuple[dt.datetime, str], int] = field(default_factory=dict)

    @property
    def settled(self) -> int:
        return sum(v.settled_count for v in self.by_currency.values())

    @property
    def success_rate(self) -> float | None:
        decided = sum(n for status, n in self.by_status.items() if status not in UNDECIDED)
        return None if decided == 0 else self.settled / decided

    def currencies(self) -> list[CurrencyVolume]:
        """Largest settled volume first; a currency with only unsettled payments still shows."""
        return sorted(self.by_currency.values(), key=lambda v: (-v.settled_amount, v.currency))


def period_totals(session, merchant_id, start: dt.datetime, unit: str) -> PeriodTotals:
    """The merchant's payments created since `start`, grouped by `unit` ('day' or 'hour')."""
    rollup = _rollup([merchant_id], start)
    bucket = sa.func.date_trunc(unit, sa.func.timezone("UTC", rollup.c.hour)).label("bucket")
    rows = session.execute(
        sa.select(
            bucket,
            rollup.c.currency,
            rollup.c.status,
            sa.func.sum(rollup.c.payments).label("count"),
            sa.func.sum(rollup.c.amount).label("amount"),
        )
        .group_by(bucket, rollup.c.currency, rollup.c.status)
        .having(sa.func.sum(rollup.c.payments) != 0)
    )
    totals = PeriodTotals()
    for row in rows:
        status = str(row.status)
        totals.count += int(row.count)
        totals.by_status[status] = totals.by_status.get(status, 0) + int(row.count)
        volume = totals.by_currency.setdefault(row.currency, CurrencyVolume(row.currency))
        if status in SETTLED_VALUES:
            volume.settled_amount += int(row.amount)
            volume.settled_count += int(row.count)
            key = (row.bucket.replace(tzinfo=dt.UTC), row.currency)
            totals.settled_by_bucket[key] = totals.settled_by_bucket.get(key, 0) + int(row.amount)
    return totals


def settled_volumes(
    session, merchant_ids: list[uuid.UUID], start: dt.datetime
) -> dict[uuid.UUID, list[tuple[str, int, int]]]:
    """Per merchant: [(currency, settled amount, settled count)], largest first."""
    volumes: dict[uuid.UUID, list[tuple[str, int, int]]] = {m: [] for m in merchant_ids}
    if not merchant_ids:
        return volumes
    rollup = _rollup(merchant_ids, start)
    amount = sa.func.sum(rollup.c.amount)
    rows = session.execute(
        sa.select(rollup.c.merchant_id, rollup.c.currency, amount, sa.func.sum(rollup.c.payments))
        .where(rollup.c.status.in_(SETTLED))
        .group_by(rollup.c.merchant_id, rollup.c.currency)
        .having(sa.func.sum(rollup.c.payments) != 0)
        .order_by(rollup.c.merchant_id, amount.desc())
    )
    for merchant_id, currency, total, count in rows:
        volumes[merchant_id].append((currency, int(total), int(count)))
    return volumes
