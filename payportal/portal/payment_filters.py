"""The payments table's filters, shared by the dashboard and the operator console: the query
string of the page as the payments API's own list query."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from pydantic import ValidationError

from payportal.money import SUPPORTED_CURRENCIES
from payportal.payments.models import Gateway, Payment, PaymentStatus
from payportal.payments.schemas import PaymentListQuery
from payportal.payments.services import payment_page, payment_page_sql
from payportal.portal.forms import errors_from_validation, optional

PAGE_SIZE = 25
FILTERS = ("status", "gateway", "currency", "created_from", "created_to", "q")
# what a row of the payments tables shows (dashboard, console, the overview's latest payments)
TABLE_COLUMNS = (
    Payment.id,
    Payment.reference,
    Payment.amount,
    Payment.currency,
    Payment.status,
    Payment.gateway,
    Payment.description,
    Payment.customer_email,
    Payment.customer_name,
    Payment.created_at,
)


def latest_payment_rows(session, merchant_id, limit: int) -> list:
    """The merchant's `limit` newest payments as rows of the table's columns (the overview):
    the first page of the list with no filter."""
    statement = payment_page_sql(TABLE_COLUMNS, (), after_cursor=False)
    return statement.all(session, {"merchant_id": merchant_id, "page_limit": limit})


def payment_rows(session, merchant_id, query: PaymentListQuery) -> tuple[list, bool, str | None]:
    """One page of the API's own list (same filters, order and cursor) as rows of the columns
    the tables show, not tracked Payment objects of every column."""
    return payment_page(session, TABLE_COLUMNS, merchant_id, query)


def _day(text: str, field: str, errors: dict) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), dt.UTC)
    except ValueError:
        errors[field] = "Use a date like 2025-01-31."
        return None


def list_query(request, *, limit: int = PAGE_SIZE) -> tuple[PaymentListQuery, dict, dict]:
    """The table's filters from the query string -> (API list query, raw values, errors).

    Dates are whole UTC days and the 'to' day is included, as a person means it.
    """
    values = {name: request.GET.get(name, "").strip() for name in FILTERS}
    errors: dict[str, str] = {}
    created_from = _day(values["created_from"], "created_from", errors)
    created_to = _day(values["created_to"], "created_to", errors)
    data = optional(values, "status", "gateway", "currency", "q")
    if created_from is not None:
        data["created_from"] = created_from
    if created_to is not None:
        data["created_to"] = created_to + dt.timedelta(days=1)
    cursor = request.GET.get("cursor")
    if cursor:
        data["cursor"] = cursor
    try:
        query = PaymentListQuery.model_validate({**data, "limit": limit})
    except ValidationError as exc:
        errors.update(errors_from_validation(exc))
        query = PaymentListQuery(limit=limit)
    return query, values, errors


def payments_table(request, merchant_id, base: str) -> dict:
    """One page of a merchant's payments with the filters, errors and paging links of `base`."""
    query, values, errors = list_query(request)
    payments, has_more, next_cursor = [], False, None
    if not errors:
        payments, has_more, next_cursor = payment_rows(request.read_dbsession, merchant_id, query)
    filters = {k: v for k, v in values.items() if v}
    query_string = urlencode(filters)
    return {
        "payments": payments,
        "filters": values,
        "errors": errors,
        "filtered": bool(filters),
        "query_string": query_string,
        "next_url": f"{base}?{urlencode({**filters, 'cursor': next_cursor})}" if has_more else "",
        "first_url": (f"{base}?{query_string}" if query_string else base)
        if request.GET.get("cursor")
        else "",
        "statuses": [s.value for s in PaymentStatus],
        "gateways": [g.value for g in Gateway],
        "currencies": SUPPORTED_CURRENCIES,
    }
