"""Payment domain services: initialize, change status, refund, find, list and the timeline."""

from __future__ import annotations

import datetime as dt
import functools
import json
import secrets
import uuid

import sqlalchemy as sa

from payportal.db import DriverSQL, utcnow
from payportal.errors import ValidationFailed
from payportal.events.models import OutboxEvent
from payportal.events.services import publish_after_commit
from payportal.gateways.models import GatewayWebhook
from payportal.pagination import finish_page, ordered_page, page_params
from payportal.payment_methods.models import PaymentMethod, PaymentMethodStatus
from payportal.payments.models import (
    Payment,
    PaymentStatus,
    PaymentTransition,
    Refund,
    RefundStatus,
)
from payportal.payments.schemas import (
    EventEntry,
    InitializePayment,
    PaymentListQuery,
    PaymentOut,
    RefundEntry,
    TransitionEntry,
    WebhookEntry,
    checkout_url,
)
from payportal.payments.state import (
    InvalidTransition,
    apply_transition,
    can_transition,
    lock_payment,
)

S = PaymentStatus

REFUNDABLE = frozenset({S.COMPLETED, S.PARTIALLY_REFUNDED})
# money leaves through refunds, with an amount: PUT status cannot set these
REFUND_STATUSES = frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED})


def new_reference(prefix: str) -> str:
    """`pay_` / `re_` + 24 url-safe random characters (144 bits)."""
    return prefix + secrets.token_urlsafe(18)


def refund_payment(
    session,
    settings,
    payment: Payment,
    *,
    amount: int | None,
    reason: str | None,
    source: str,
    actor: str | None,
    correlation_id: str | None,
    gateway_refund_id: str | None = None,
) -> Refund:
    """Refund `amount` (default: what is left) of a payment the caller has already locked.

    Writes the refund row and moves the payment to partially_refunded or refunded through the
    state machine (one event). A gateway refund id seen before for this payment returns that
    refund and changes nothing, so a gateway repeating itself never refunds twice.
    """
    if gateway_refund_id is not None:
        seen = session.execute(
            sa.select(Refund).where(
                Refund.payment_id == payment.id, Refund.gateway_refund_id == gateway_refund_id
            )
        ).scalar_one_or_none()
        if seen is not None:
            return seen
    left = payment.amount - payment.amount_refunded
    current = PaymentStatus(payment.status)
    if current not in REFUNDABLE:
        wanted = S.REFUNDED if amount is None or amount >= left else S.PARTIALLY_REFUNDED
        raise InvalidTransition(current, wanted)
    if amount is None:
        amount = left
    if amount <= 0:
        raise ValidationFailed(
            "amount must be greater than 0",
            details=[{"field": "amount", "message": "must be greater than 0"}],
        )
    if amount > left:
        raise ValidationFailed(
            f"amount {amount} is more than the {left} left to refund",
            details=[{"field": "amount", "message": f"must be at most {left}"}],
        )
    refunded = payment.amount_refunded + amount
    refund = Refund(
        reference=new_reference("re_"),
        payment_id=payment.id,
        merchant_id=payment.merchant_id,
        amount=amount,
        currency=payment.currency,
        reason=reason,
        status=RefundStatus.SUCCEEDED,
        source=source,
        gateway_refund_id=gateway_refund_id,
        created_at=utcnow(),
        created_by=actor,
        updated_by=actor,
    )
    session.add(refund)
    apply_transition(
        session,
        payment,
        S.REFUNDED if refunded == payment.amount else S.PARTIALLY_REFUNDED,
        source=source,
        settings=settings,
        actor=actor,
        reason=reason,
        correlation_id=correlation_id,
        amount_refunded=refunded,
    )
    return refund


def _invalid(field: str, message: str, summary: str | None = None) -> ValidationFailed:
    return ValidationFailed(
        summary or f"{field}: {message}", details=[{"field": field, "message": message}]
    )


def check_payment_method(
    session, merchant_id: uuid.UUID, method_id: uuid.UUID, currency: str
) -> PaymentMethod:
    """The merchant's own live, active, unexpired method, compatible with the currency."""
    method = session.execute(
        sa.select(PaymentMethod).where(
            PaymentMethod.id == method_id,
            PaymentMethod.merchant_id == merchant_id,
            PaymentMethod.deleted_at.is_(None),
        )
    ).scalar_one_or_none()
    if method is None:
        raise _invalid("payment_method_id", "no such payment method")
    if method.status != PaymentMethodStatus.ACTIVE:
        raise _invalid("payment_method_id", f"the payment method is {method.status}")
    if method.expires_at is not None and method.expires_at <= utcnow():
        raise _invalid("payment_method_id", "the payment method has expired")
    accepted = (method.metadata_ or {}).get("currencies")
    if isinstance(accepted, str):
        accepted = [accepted]
    if isinstance(accepted, list) and currency not in {str(c).upper() for c in accepted}:
        raise _invalid("payment_method_id", f"the payment method does not accept {currency}")
    return method


# The payment, its first transition and its payment.initiated event: one statement, one round
# trip (the three rows commit together or not at all; the transition's foreign key is checked
# at the end of the statement, when the payment exists). The values are all made here, so
# nothing needs to be read back.
INITIALIZE = DriverSQL(
    """
    WITH payment AS (
        INSERT INTO payments (id, reference, merchant_id, payment_method_id, amount, currency,
            status, gateway, description, customer_email, customer_name, customer_phone,
            metadata, amount_refunded, platform_fee, gateway_fee, expires_at, version,
            created_at, updated_at, created_by, updated_by)
        VALUES (:id, :reference, :merchant_id, :payment_method_id, :amount, :currency,
            'pending', CAST(:gateway AS payment_gateway), :description, :customer_email,
            :customer_name, :customer_phone, CAST(:metadata AS jsonb), 0, 0, 0, :expires_at, 1,
            :now, :now, :actor, :actor)
    ), transition AS (
        INSERT INTO payment_transitions (id, payment_id, merchant_id, from_status, to_status,
            source, actor, created_at)
        VALUES (:transition_id, :id, :merchant_id, NULL, 'pending', :source, :actor, :now)
    )
    INSERT INTO outbox_events (id, merchant_id, type, payment_id, data, correlation_id,
        created_at, next_attempt_at)
    VALUES (:event_id, :merchant_id, 'payment.initiated', :id, CAST(:event_data AS jsonb),
        :correlation_id, :now, :now)
    """
)


# what PaymentOut.from_payment reads, as plain columns (Core: no identity map, no mapped objects)
PAYMENT_COLUMNS = tuple(
    Payment.__table__.c[name]
    for name in (
        "id", "merchant_id", "reference", "amount", "amount_refunded", "currency", "status",
        "gateway", "gateway_reference", "description", "customer_email", "customer_name",
        "customer_phone", "metadata", "payment_method_id", "failure_code", "failure_reason",
        "platform_fee", "gateway_fee", "net_amount", "expires_at", "completed_at", "created_at",
        "updated_at",
    )
)  # fmt: skip
PAYMENT_ROW = DriverSQL(
    # the table's own column names, never input
    f"SELECT {', '.join(column.name for column in PAYMENT_COLUMNS)} FROM payments"  # noqa: S608
    " WHERE merchant_id = :merchant_id AND reference = :reference"
)


def initialize_payment(
    session,
    settings,
    merchant_id: uuid.UUID,
    data: InitializePayment,
    *,
    actor: str | None,
    correlation_id: str | None,
    source: str = "api",
) -> PaymentOut:
    """A new pending payment, its first transition and its payment.initiated event; returns
    the payment as the API shows it (the event carries the same)."""
    if data.amount > settings.max_payment_amount:
        raise _invalid("amount", f"must be at most {settings.max_payment_amount}")
    if data.payment_method_id is not None:
        check_payment_method(session, merchant_id, data.payment_method_id, data.currency)
    now = utcnow()
    payment = PaymentOut(
        id=uuid.uuid4(),
        reference=new_reference("pay_"),
        amount=data.amount,
        amount_refunded=0,
        currency=data.currency,
        status=S.PENDING.value,
        gateway=str(data.gateway),
        gateway_reference=None,
        description=data.description,
        customer_email=data.customer_email,
        customer_name=data.customer_name,
        customer_phone=data.customer_phone,
        metadata=dict(data.metadata),
        payment_method_id=data.payment_method_id,
        failure_code=None,
        failure_reason=None,
        fee=0,
        net_amount=None,
        checkout_url=checkout_url(settings.public_url, ""),
        expires_at=now + dt.timedelta(seconds=settings.payment_ttl),
        completed_at=None,
        created_at=now,
        updated_at=now,
    )
    payment.checkout_url += payment.reference
    event_id = uuid.uuid4()
    INITIALIZE.run(
        session,
        {
            "id": payment.id,
            "reference": payment.reference,
            "merchant_id": merchant_id,
            "payment_method_id": payment.payment_method_id,
            "amount": payment.amount,
            "currency": payment.currency,
            "gateway": payment.gateway,
            "description": payment.description,
            "customer_email": payment.customer_email,
            "customer_name": payment.customer_name,
            "customer_phone": payment.customer_phone,
            "metadata": json.dumps(payment.metadata),
            "expires_at": payment.expires_at,
            "now": now,
            "actor": actor,
            "transition_id": uuid.uuid4(),
            "source": source,
            "event_id": event_id,
            "event_data": PaymentOut.__pydantic_serializer__.to_json(payment).decode(),
            "correlation_id": correlation_id,
        },
    )
    publish_after_commit(session, merchant_id, event_id)
    return payment


def change_status(
    session,
    settings,
    merchant_id: uuid.UUID,
    reference: str,
    *,
    status: PaymentStatus | str,
    gateway_reference: str | None = None,
    failure_code: str | None = None,
    failure_reason: str | None = None,
    source: str,
    actor: str | None,
    correlation_id: str | None,
) -> Payment:
    """Move the merchant's payment to `status` through the state machine (row locked)."""
    target = PaymentStatus(status)
    payment = lock_payment(session, merchant_id=merchant_id, reference=reference)
    if target in REFUND_STATUSES and can_transition(PaymentStatus(payment.status), target):
        raise _invalid(
            "status",
            "refund through payments/{reference}/refunds, which records the amount",
            f"a payment becomes {target} by refunding it",
        )
    changes = {}
    if gateway_reference is not None:
        changes["gateway_reference"] = gateway_reference
    if target is S.FAILED:
        changes.update(failure_code=failure_code, failure_reason=failure_reason)
    apply_transition(
        session,
        payment,
        target,
        source=source,
        settings=settings,
        actor=actor,
        reason=failure_reason,
        correlation_id=correlation_id,
        **changes,
    )
    return payment


def create_refund(
    session,
    settings,
    merchant_id: uuid.UUID,
    reference: str,
    *,
    amount: int | None,
    reason: str | None,
    source: str,
    actor: str | None,
    correlation_id: str | None,
) -> tuple[Refund, Payment]:
    """Lock the merchant's payment and refund it (see refund_payment)."""
    payment = lock_payment(session, merchant_id=merchant_id, reference=reference)
    refund = refund_payment(
        session,
        settings,
        payment,
        amount=amount,
        reason=reason,
        source=source,
        actor=actor,
        correlation_id=correlation_id,
    )
    session.flush()
    return refund, payment


def find_payment_row(session, merchant_id: uuid.UUID, reference: str):
    """The merchant's payment as a row of the columns PaymentOut shows (and merchant_id)."""
    return PAYMENT_ROW.first(session, {"merchant_id": merchant_id, "reference": reference})


def find_payment(session, merchant_id: uuid.UUID, reference: str) -> Payment | None:
    return session.execute(
        sa.select(Payment).where(Payment.merchant_id == merchant_id, Payment.reference == reference)
    ).scalar_one_or_none()


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# The filters of a payments list, each a condition on bind parameters, so the statement for a
# set of filters is built (and compiled) once and every request only binds its values.
_PAYMENTS = Payment.__table__.c
PAYMENT_FILTERS = {
    "status": _PAYMENTS.status == sa.bindparam("status"),
    "gateway": _PAYMENTS.gateway == sa.bindparam("gateway"),
    "currency": _PAYMENTS.currency == sa.bindparam("currency"),
    "customer_email": _PAYMENTS.customer_email == sa.bindparam("customer_email"),
    "created_from": _PAYMENTS.created_at >= sa.bindparam("created_from"),
    "created_to": _PAYMENTS.created_at < sa.bindparam("created_to"),
    "q": sa.or_(
        _PAYMENTS.reference.like(sa.bindparam("q"), escape="\\"),
        _PAYMENTS.customer_email.like(sa.bindparam("q_email"), escape="\\"),
    ),
}


def payment_list_filters(merchant_id: uuid.UUID, query: PaymentListQuery) -> tuple[tuple, dict]:
    """(the names of the PAYMENT_FILTERS the query uses, the values of their parameters)."""
    params: dict = {"merchant_id": merchant_id}
    for name in ("status", "gateway", "currency", "created_from", "created_to"):
        value = getattr(query, name)
        if value is not None:
            params[name] = value
    if query.customer_email is not None:
        params["customer_email"] = query.customer_email.lower()
    if query.q is not None:
        prefix = _escape_like(query.q) + "%"
        params["q"], params["q_email"] = prefix, prefix.lower()
    return tuple(name for name in PAYMENT_FILTERS if name in params), params


@functools.cache
def _filtered(columns: tuple, filters: tuple) -> sa.Select:
    """`columns` of the payments of bind parameter `merchant_id` that match `filters`; one
    statement per (columns, filters) ever asked for: at most 2 ** 7 per tuple of columns."""
    conditions = [PAYMENT_FILTERS[name] for name in filters]
    return sa.select(*columns).where(
        _PAYMENTS.merchant_id == sa.bindparam("merchant_id"), *conditions
    )


@functools.cache
def payment_page_sql(columns: tuple, filters: tuple, after_cursor: bool) -> DriverSQL:
    """_filtered newest first, one page (pagination.ordered_page) deep, built and compiled for
    psycopg once: a page's rows are read past SQLAlchemy's result machinery, which for 21 rows
    of 24 columns cost more than reading them (the cursor description's Column objects, Row
    objects and their _asdict)."""
    page = ordered_page(_filtered(columns, filters), Payment, after_cursor=after_cursor)
    return DriverSQL.compile(page)


def payment_list_statement(merchant_id: uuid.UUID, query: PaymentListQuery) -> sa.Select:
    """The merchant's payments matching the filters, with their values bound (the export)."""
    filters, params = payment_list_filters(merchant_id, query)
    return _filtered((Payment,), filters).params(params)


def payment_page(
    session, columns: tuple, merchant_id: uuid.UUID, query: PaymentListQuery
) -> tuple[list, bool, str | None]:
    """One keyset page of the merchant's payments matching the query, as rows of `columns`."""
    filters, params = payment_list_filters(merchant_id, query)
    statement = payment_page_sql(columns, filters, bool(query.cursor))
    rows = statement.all(session, {**params, **page_params(query.limit, query.cursor)})
    return finish_page(rows, query.limit)


def list_payments(
    session, merchant_id: uuid.UUID, query: PaymentListQuery
) -> tuple[list, bool, str | None]:
    """One page as rows of PAYMENT_COLUMNS."""
    return payment_page(session, PAYMENT_COLUMNS, merchant_id, query)


def payment_timeline(session, payment: Payment) -> list:
    """Transitions, refunds, gateway webhooks received and outbox events, oldest first."""
    entries: list = []
    for t in session.scalars(
        sa.select(PaymentTransition).where(PaymentTransition.payment_id == payment.id)
    ):
        entries.append(
            TransitionEntry(
                at=t.created_at,
                from_status=t.from_status and str(t.from_status),
                to_status=str(t.to_status),
                source=t.source,
                actor=t.actor,
                reason=t.reason,
            )
        )
    for r in session.scalars(sa.select(Refund).where(Refund.payment_id == payment.id)):
        entries.append(
            RefundEntry(
                at=r.created_at,
                reference=r.reference,
                amount=r.amount,
                currency=r.currency,
                reason=r.reason,
                source=r.source,
            )
        )
    for w in session.scalars(
        sa.select(GatewayWebhook).where(GatewayWebhook.payment_id == payment.id)
    ):
        entries.append(
            WebhookEntry(
                at=w.received_at,
                gateway=w.gateway,
                gateway_event_id=w.gateway_event_id,
                event_type=w.event_type,
                signature_valid=w.signature_valid,
                outcome=w.outcome,
            )
        )
    for e in session.scalars(sa.select(OutboxEvent).where(OutboxEvent.payment_id == payment.id)):
        entries.append(
            EventEntry(at=e.created_at, event_id=e.id, type=e.type, published_at=e.published_at)
        )
    # within one instant a transition comes before the refund and event it caused
    order = {"transition": 0, "refund": 1, "webhook": 2, "event": 3}
    entries.sort(key=lambda entry: (entry.at, order[entry.kind]))
    return entries
