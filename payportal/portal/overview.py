"""The merchant's overview: volume per currency, count and success rate for today / 7 / 30 days,
daily volume and payments by status as SVG charts, and the latest payments.

Totals come from the payments slice's statistics service; the daily series is one more
aggregate over the same (merchant_id, created_at) index, so the page costs three index range
scans whatever the size of the payments table.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from babel.numbers import format_compact_currency
from pyramid.view import view_config

from payportal.db import utcnow
from payportal.merchants.models import Merchant
from payportal.money import format_money, to_major
from payportal.payments import services
from payportal.payments.models import Payment, PaymentStatus
from payportal.payments.schemas import PaymentListQuery
from payportal.payments.state import SETTLED
from payportal.payments.statistics import payment_summary
from payportal.portal.charts import BarPoint, bar_chart, proportion_bar
from payportal.portal.resources import MerchantHome
from payportal.portal.templating import BADGE_TONES
from payportal.security import Permission

RANGES = {"today": ("Today", 1), "7d": ("Last 7 days", 7), "30d": ("Last 30 days", 30)}
DEFAULT_RANGE = "30d"
LATEST = 8
# a payment still on its way has no outcome yet: it does not count for or against the rate
UNDECIDED = frozenset({PaymentStatus.PENDING, PaymentStatus.PROCESSING})


def compact_money(minor: int, currency: str) -> str:
    """'$1.2K' for chart axes, where full amounts would not fit."""
    return format_compact_currency(
        to_major(minor, currency), currency, locale="en_US", fraction_digits=1
    )


def period_start(now: dt.datetime, days: int) -> dt.datetime:
    """Midnight UTC `days - 1` days ago: 'today' starts at midnight, '7 days' six days before."""
    today = dt.datetime.combine(now.date(), dt.time(), dt.UTC)
    return today - dt.timedelta(days=days - 1)


def daily_volume(session, merchant_id, currency: str, start: dt.datetime, days: int) -> list:
    """Settled volume per UTC day for one currency, zero-filled, oldest first."""
    day = sa.func.date_trunc("day", sa.func.timezone("UTC", Payment.created_at)).label("day")
    rows = session.execute(
        sa.select(day, sa.func.sum(Payment.amount).label("volume"))
        .where(
            Payment.merchant_id == merchant_id,
            Payment.created_at >= start,
            Payment.currency == currency,
            Payment.status.in_(SETTLED),
        )
        .group_by(day)
    ).all()
    volume = {row.day.date(): int(row.volume) for row in rows}
    dates = [(start + dt.timedelta(days=n)).date() for n in range(days)]
    return [
        BarPoint(
            label=d.strftime("%d %b"),
            value=volume.get(d, 0),
            title=f"{d:%d %b}: {format_money(volume.get(d, 0), currency)}",
        )
        for d in dates
    ]


def hourly_volume(session, merchant_id, currency: str, start: dt.datetime) -> list:
    """Today's settled volume per UTC hour (a one-day range reads better by the hour)."""
    hour = sa.func.date_part("hour", sa.func.timezone("UTC", Payment.created_at)).label("hour")
    rows = session.execute(
        sa.select(hour, sa.func.sum(Payment.amount).label("volume"))
        .where(
            Payment.merchant_id == merchant_id,
            Payment.created_at >= start,
            Payment.currency == currency,
            Payment.status.in_(SETTLED),
        )
        .group_by(hour)
    ).all()
    volume = {int(row.hour): int(row.volume) for row in rows}
    return [
        BarPoint(
            label=f"{h:02d}:00",
            value=volume.get(h, 0),
            title=f"{h:02d}:00: {format_money(volume.get(h, 0), currency)}",
        )
        for h in range(24)
    ]


@view_config(
    route_name="portal",
    context=MerchantHome,
    name="",
    request_method="GET",
    permission=Permission.PAYMENTS_READ,
    renderer="portal/overview.jinja2",
)
def overview(context, request):
    session = request.dbsession
    merchant_id = context.merchant_id
    range_key = request.GET.get("range", DEFAULT_RANGE)
    if range_key not in RANGES:
        range_key = DEFAULT_RANGE
    label, days = RANGES[range_key]
    now = utcnow()
    start = period_start(now, days)
    summary = payment_summary(session, merchant_id, created_from=start, created_to=now)

    currencies = sorted(summary.by_currency, key=lambda c: (-c.settled_amount, c.currency))
    count = sum(c.count for c in summary.by_currency)
    settled = sum(c.settled_count for c in summary.by_currency)
    by_status: dict[str, int] = {}
    for row in summary.by_status:
        by_status[row.status] = by_status.get(row.status, 0) + row.count
    decided = sum(n for status, n in by_status.items() if status not in UNDECIDED)
    success_rate = None if decided == 0 else settled / decided

    default_currency = session.get(Merchant, merchant_id).default_currency
    chart_currency = request.GET.get("currency") or (
        currencies[0].currency if currencies else default_currency
    )
    if chart_currency not in {c.currency for c in currencies}:
        chart_currency = currencies[0].currency if currencies else default_currency
    if days == 1:
        points = hourly_volume(session, merchant_id, chart_currency, start)
    else:
        points = daily_volume(session, merchant_id, chart_currency, start, days)

    status_rows = [
        {
            "status": s.value,
            "count": by_status.get(s.value, 0),
            "bar": proportion_bar(
                by_status.get(s.value, 0), count, BADGE_TONES.get(s.value, "neutral")
            ),
        }
        for s in PaymentStatus
        if by_status.get(s.value)
    ]
    latest, _more, _cursor = services.list_payments(
        session, merchant_id, PaymentListQuery(limit=LATEST)
    )
    return {
        "section": "home",
        "ranges": RANGES,
        "range_key": range_key,
        "range_label": label,
        "currencies": currencies,
        "count": count,
        "settled": settled,
        "success_rate": success_rate,
        "chart_currency": chart_currency,
        "chart": bar_chart(
            points,
            label=f"Settled volume in {chart_currency}, {label.lower()}",
            axis_format=lambda minor: compact_money(minor, chart_currency),
        ),
        "chart_total": sum(p.value for p in points),
        "status_rows": status_rows,
        "latest": latest,
    }
