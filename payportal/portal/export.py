"""CSV export that streams every payment matching the dashboard's filters, however many.

The response body is produced after the view returns, when pyramid_tm has already ended the
request's transaction, so the rows are read on a connection of their own: a server-side cursor
inside one read-only REPEATABLE READ transaction (a consistent snapshot, fetched in batches, so
memory stays flat at a million rows).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator

import sqlalchemy as sa
from pyramid.response import Response

from payportal.db import TEST_CONNECTION_KEY, utcnow
from payportal.money import to_major
from payportal.payments.models import Payment

BATCH = 2000
COLUMNS = (
    "reference",
    "created_at",
    "status",
    "amount",
    "currency",
    "amount_refunded",
    "fee",
    "net_amount",
    "gateway",
    "gateway_reference",
    "customer_email",
    "customer_name",
    "description",
    "completed_at",
)
# a cell starting with one of these is a formula to a spreadsheet (CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export_filename(now: dt.datetime | None = None) -> str:
    return f"payments-{(now or utcnow()):%Y%m%d-%H%M%S}.csv"


def _text(value: str | None) -> str:
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_START) else value


def _iso(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else ""


def _major(minor: int | None, currency: str) -> str:
    return "" if minor is None else str(to_major(minor, currency))


def payment_row(payment) -> list[str]:
    """One payment as CSV cells; amounts in major units with the currency's exact precision."""
    currency = payment.currency
    fee = (payment.platform_fee or 0) + (payment.gateway_fee or 0)
    return [
        payment.reference,
        _iso(payment.created_at),
        str(payment.status),
        _major(payment.amount, currency),
        currency,
        _major(payment.amount_refunded, currency),
        _major(fee, currency),
        _major(payment.net_amount, currency),
        str(payment.gateway),
        _text(payment.gateway_reference),
        _text(payment.customer_email),
        _text(payment.customer_name),
        _text(payment.description),
        _iso(payment.completed_at),
    ]


def _encode(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


def _rows(connection, statement: sa.Select) -> Iterator[bytes]:
    ordered = statement.order_by(Payment.created_at.desc(), Payment.id.desc())
    # per statement: Connection.execution_options would change the shared connection for good
    result = connection.execute(ordered.execution_options(stream_results=True, yield_per=BATCH))
    for partition in result.partitions(BATCH):
        # Core rows of the payments service's select(Payment): columns by attribute name
        yield _encode([payment_row(row) for row in partition])


def _stream(request, statement: sa.Select) -> Iterator[bytes]:
    yield _encode([list(COLUMNS)])
    shared = request.environ.get(TEST_CONNECTION_KEY)
    if shared is not None:
        # the test harness's connection already holds the test's open transaction
        yield from _rows(shared, statement)
        return
    with request.registry.dbengine.connect() as connection:
        # first statement of the transaction: one snapshot for the whole file, no writes
        connection.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        try:
            yield from _rows(connection, statement)
        finally:
            connection.rollback()


def stream_payments_csv(request, statement: sa.Select, *, filename: str) -> Response:
    response = Response(content_type="text/csv", charset="utf-8")
    response.content_disposition = f'attachment; filename="{filename}"'
    response.app_iter = _stream(request, statement)
    return response
