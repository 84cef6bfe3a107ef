"""The merchant's overview: volume per currency, count and success rate for today / 7 / 30 days,
volume over time and payments by status as SVG charts, and the latest payments.

Everything but the latest payments comes from the rollup kept in the same transaction as every
payment change (payportal/portal/models.py), grouped by day or hour, currency and status: the
tiles, the chart and the status bars always agree, and a merchant with hundreds of thousands of
payments in the period costs a few hundred rollup rows (daily ones for the 7- and 30-day
ranges, hourly ones for today), not a scan of them.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from babel.numbers import format_compact_currency
from pyramid.view import view_config

from payportal.db import utcnow
from payportal.merchants.models import Merchant
from payportal.money import format_money, to_major
from payportal.payments.models import PaymentStatus
from payportal.portal.charts import BarPoint, bar_chart, proportion_bar
from payportal.portal.payment_filters import latest_payment_rows
from payportal.portal.resources import MerchantHome
from payportal.portal.rollup import PeriodTotals, period_totals
from payportal.portal.templating import BADGE_TONES
from payportal.security import Permission

RANGES = {"today": ("Today", 1), "7d": ("Last 7 days", 7), "30d": ("Last 30 days", 30)}
DEFAULT_RANGE = "30d"
LATEST = 8


@lru_cache(maxsize=1024)
def compact_money(minor: int, currency: str) -> str:
    """'$1.2K' for chart axes, where full amounts would not fit (the axes' round values recur:
    each is worked out by Babel once)."""
    return format_compact_currency(
        to_major(minor, currency), currency, locale="en_US", fraction_digits=1
    )


def period_start(now: dt.datetime, days: int) -> dt.datetime:
    """Midnight UTC `days - 1` days ago: 'today' starts at midnight, '7 days' six days before."""
    today = dt.datetime.combine(now.date(), dt.time(), dt.UTC)
    return today - dt.timedelta(days=days - 1)


def volume_points(totals: PeriodTotals, currency: str, start: dt.datetime, days: int) -> list:
    """Zero-filled bars, oldest first: 24 hours for today, else one per day."""
    if days == 1:
        steps = [(start + dt.timedelta(hours=h), f"{h:02d}:00") for h in range(24)]
    else:
        steps = [
            (start + dt.timedelta(days=n), f"{start + dt.timedelta(days=n):%d %b}")
            for n in range(days)
        ]
    points = []
    for at, label in steps:
        value = totals.settled_by_bucket.get((at, currency), 0)
        points.append(
            BarPoint(label=label, value=value, title=f"{label}: {format_money(value, currency)}")
        )
    return points


@view_config(
    route_name="portal",
    context=MerchantHome,
    name="",
    request_method="GET",
    permission=Permission.PAYMENTS_READ,
    renderer="portal/overview.jinja2",
)
def overview(context, request):
    session = request.read_dbsession  # a report: the replica serves it when configured
    merchant_id = context.merchant_id
    range_key = request.GET.get("range", DEFAULT_RANGE)
    if range_key not in RANGES:
        range_key = DEFAULT_RANGE
    label, days = RANGES[range_key]
    start = period_start(utcnow(), days)
    totals = period_totals(session, merchant_id, start, "hour" if days == 1 else "day")
    currencies = totals.currencies()

    chart_currency = request.GET.get("currency", "")
    if chart_currency not in totals.by_currency:
        chart_currency = (
            currencies[0].currency
            if currencies
            else session.get(Merchant, merchant_id).default_currency
        )
    points = volume_points(totals, chart_currency, start, days)
    status_rows = [
        {
            "status": s.value,
            "count": totals.by_status[s.value],
            "bar": proportion_bar(
                totals.by_status[s.value], totals.count, BADGE_TONES.get(s.value, "neutral")
            ),
        }
        for s in PaymentStatus
        if totals.by_status.get(s.value)
    ]
    latest = latest_payment_rows(session, merchant_id, LATEST)
    return {
        "section": "home",
        "ranges": RANGES,
        "range_key": range_key,
        "range_label": label,
        "currencies": currencies,
        "count": totals.count,
        "settled": totals.settled,
        "success_rate": totals.success_rate,
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
