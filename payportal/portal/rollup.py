"""The payments rollup (payportal/portal/models.py): reading it — per merchant, what was created
in a period, by hour or day, currency and status: the folded totals (daily for periods of whole
UTC days, else hourly) plus every delta the reader can see that is not folded yet — and folding
it (fold_deltas, run by payportal-relay and payportal-sweep)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa

from payportal.db import select_rows
from payportal.payments.models import PaymentStatus
from payportal.payments.state import SETTLED
from payportal.portal.models import PaymentDailyTotal, PaymentHourlyTotal, PaymentTotalDelta

# a payment still on its way has no outcome yet: it counts neither for nor against the rate
UNDECIDED = frozenset({PaymentStatus.PENDING.value, PaymentStatus.PROCESSING.value})


# deltas moved per transaction: a few seconds of a busy platform's writes, one short statement
FOLD_BATCH = 5_000
_FOLD = sa.text("SELECT payment_totals_fold(:batch)")


def fold_deltas(session_factory, batch: int = FOLD_BATCH) -> int:
    """Move every committed delta into the totals, `batch` per transaction (migration 0005's
    payment_totals_fold); returns how many. Returns 0 at once while another process folds:
    one folder at a time, and that one takes these too."""
    total = 0
    while True:
        with session_factory() as session, session.begin():
            moved = session.scalar(_FOLD, {"batch": batch})
        total += moved
        if moved < batch:
            return total


def _rollup(period, merchant_matches, start):
    """Totals and pending deltas since `start` of the merchants whose id meets
    `merchant_matches(column)`, as (merchant_id, at, currency, status, payments, amount).

    `period` is the totals' own time column, PaymentHourlyTotal.hour or PaymentDailyTotal.day;
    `start` must be a boundary of it (an hour, a UTC midnight) for the sums to be exact. The
    deltas are always per hour, which falls within one day of the daily totals.
    """
    totals, deltas = period.class_, PaymentTotalDelta
    return sa.union_all(
        sa.select(
            totals.merchant_id, period.label("at"), totals.currency, totals.status,
            totals.payments, totals.amount,
        ).where(merchant_matches(totals.merchant_id), period >= start),
        sa.select(
            deltas.merchant_id, deltas.hour, deltas.currency, deltas.status,
            deltas.payments, deltas.amount,
        ).where(merchant_matches(deltas.merchant_id), deltas.hour >= start),
    ).subquery()  # fmt: skip


def _whole_days_since(start: dt.datetime) -> bool:
    """Does a period from `start` cover whole UTC days, so the daily totals hold it exactly?"""
    return start.utcoffset() is not None and start.astimezone(dt.UTC).time() == dt.time()


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


def _period_totals_statement(period) -> sa.Select:
    """One period of one merchant (parameters merchant_id, start, unit: 'day' or 'hour'), from
    the totals of `period`'s table (see _rollup).

    The groups are (bucket, currency, status), leaving out those whose payments net to zero
    (every payment of it moved on); PostgreSQL folds them into the three views the pages show
    (GROUPING SETS: per status, per currency, per bucket and currency), so a period of a
    thousand groups comes back as a few dozen rows, in integers. Built once: constructing it
    cost more than running it.
    """
    rollup = _rollup(
        period, lambda column: column == sa.bindparam("merchant_id"), sa.bindparam("start")
    )
    unit = sa.bindparam("unit", type_=sa.String)
    bucket = sa.func.date_trunc(unit, sa.func.timezone("UTC", rollup.c.at)).label("bucket")
    groups = (
        sa.select(
            bucket,
            rollup.c.currency,
            rollup.c.status,
            sa.func.sum(rollup.c.payments).label("payments"),
            sa.func.sum(rollup.c.amount).label("amount"),
        )
        .group_by(bucket, rollup.c.currency, rollup.c.status)
        .having(sa.func.sum(rollup.c.payments) != 0)
        .subquery()
    )
    g = groups.c
    settled = g.status.in_(SETTLED)

    def whole(total):  # sum() of bigints is numeric; the figures are ints
        return sa.cast(sa.func.coalesce(total, 0), sa.BigInteger)

    return sa.select(
        sa.func.grouping(g.bucket, g.currency, g.status).label("level"),
        g.bucket,
        g.currency,
        g.status,
        whole(sa.func.sum(g.payments)).label("payments"),
        whole(sa.func.sum(g.payments).filter(settled)).label("settled_payments"),
        whole(sa.func.sum(g.amount).filter(settled)).label("settled_amount"),
        sa.func.bool_or(settled).label("any_settled"),
    ).group_by(
        sa.func.grouping_sets(
            sa.tuple_(g.status), sa.tuple_(g.currency), sa.tuple_(g.bucket, g.currency)
        )
    )


_PERIOD_TOTALS_BY_HOUR = _period_totals_statement(PaymentHourlyTotal.hour)
_PERIOD_TOTALS_BY_DAY = _period_totals_statement(PaymentDailyTotal.day)
# GROUPING(bucket, currency, status) of its grouping sets: a bit per column left out
_PER_STATUS, _PER_CURRENCY, _PER_BUCKET = 0b110, 0b101, 0b001


def period_totals(session, merchant_id, start: dt.datetime, unit: str) -> PeriodTotals:
    """The merchant's payments created since `start`, grouped by `unit` ('day' or 'hour')."""
    by_day = unit == "day" and _whole_days_since(start)
    rows = select_rows(
        session,
        _PERIOD_TOTALS_BY_DAY if by_day else _PERIOD_TOTALS_BY_HOUR,
        {"merchant_id": merchant_id, "start": start, "unit": unit},
    )
    totals = PeriodTotals()
    for level, bucket_at, currency, status, payments, settled_count, settled_amount, any_settled in rows:  # fmt: skip  # noqa: E501
        if level == _PER_STATUS:
            totals.count += payments
            totals.by_status[str(status)] = payments
        elif level == _PER_CURRENCY:
            totals.by_currency[currency] = CurrencyVolume(currency, settled_amount, settled_count)
        elif level == _PER_BUCKET and any_settled:
            totals.settled_by_bucket[(bucket_at.replace(tzinfo=dt.UTC), currency)] = settled_amount
    return totals


def settled_volumes(
    session, merchant_ids: list[uuid.UUID], start: dt.datetime
) -> dict[uuid.UUID, list[tuple[str, int, int]]]:
    """Per merchant: [(currency, settled amount, settled count)], largest first."""
    volumes: dict[uuid.UUID, list[tuple[str, int, int]]] = {m: [] for m in merchant_ids}
    if not merchant_ids:
        return volumes
    period = PaymentDailyTotal.day if _whole_days_since(start) else PaymentHourlyTotal.hour
    rollup = _rollup(period, lambda column: column.in_(merchant_ids), start)
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
