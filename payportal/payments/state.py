"""The payment state machine: the only code that changes a payment's status.

A transition locks the payment row, checks the table, stamps the phase timestamp, bumps
`version`, records a payment_transitions row and appends the outbox event — all in the caller's
transaction, in one statement (the UPDATE, both INSERTs and the look for parked webhooks are
CTEs of one round trip). Completing a payment fixes its fees; from then on `net_amount` is always
amount - fees - amount_refunded. Listeners registered with `on_transition` run right after, in
the same transaction (gateways use it to apply webhooks that arrived early).

The payment moved is either an ORM `Payment` (kept current without being marked dirty, so the
unit of work does not write it again) or a `LockedPayment`, the same row read by a plain
statement where a request only needs to look at a payment and move it once (gateway webhooks).
"""

from __future__ import annotations

import enum
import functools
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
import zope.sqlalchemy
from psycopg.types.json import Jsonb
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from payportal.db import TRANSACTION_MANAGER_KEY, run_statement, utcnow
from payportal.errors import Conflict, NotFound, ValidationFailed
from payportal.events.services import INSERT_EVENT_SQL, event_params, publish_after_commit
from payportal.money import platform_fee
from payportal.payments.models import Payment, PaymentStatus, PaymentTransition
from payportal.payments.schemas import PaymentOut

S = PaymentStatus

ALLOWED: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    S.PENDING: frozenset({S.PROCESSING, S.COMPLETED, S.FAILED, S.CANCELLED, S.EXPIRED}),
    S.PROCESSING: frozenset({S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.COMPLETED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED, S.DISPUTED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REFUNDED: frozenset(),
    S.DISPUTED: frozenset(),
}
TERMINAL = frozenset(status for status, targets in ALLOWED.items() if not targets)
# statuses in which the money was taken: fees are fixed and net_amount is known
SETTLED = frozenset({S.COMPLETED, S.PARTIALLY_REFUNDED, S.REFUNDED, S.DISPUTED})

# the phase timestamp each target status stamps
PHASE_COLUMN = {
    S.PROCESSING: "processing_at",
    S.COMPLETED: "completed_at",
    S.FAILED: "failed_at",
    S.CANCELLED: "cancelled_at",
    S.EXPIRED: "expired_at",
    S.REFUNDED: "refunded_at",
    S.DISPUTED: "disputed_at",
}

EVENT_TYPE = {
    S.PROCESSING: "payment.processing",
    S.COMPLETED: "payment.completed",
    S.FAILED: "payment.failed",
    S.CANCELLED: "payment.cancelled",
    S.EXPIRED: "payment.expired",
    S.PARTIALLY_REFUNDED: "payment.partially_refunded",
    S.REFUNDED: "payment.refunded",
    S.DISPUTED: "payment.disputed",
}

# set on the transition apply_transition returns: whether, as the transition was written, the
# payment had gateway webhooks parked for it (a delivery is only ever parked while its payment
# is locked, and the payment is locked here, so the answer cannot change before commit)
PARKED_WEBHOOKS = "parked_webhooks"


class InvalidTransition(Conflict):
    code = "invalid_transition"

    def __init__(self, current: PaymentStatus, target: PaymentStatus):
        super().__init__(
            f"a payment cannot go from {current} to {target}",
            details=[{"field": "status", "message": f"{current} -> {target} is not allowed"}],
        )
        self.current = current
        self.target = target


class PaymentNotFound(NotFound):
    def __init__(self, reference: str):
        super().__init__(f"no payment {reference!r}")


TransitionListener = Callable[..., None]
_listeners: list[TransitionListener] = []


def on_transition(listener: TransitionListener) -> TransitionListener:
    """Register `listener(session, payment, transition, settings)`; runs after each transition."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def can_transition(current: PaymentStatus, target: PaymentStatus) -> bool:
    return target in ALLOWED[current]


def is_reachable(current: PaymentStatus, target: PaymentStatus) -> bool:
    """Can `target` still happen later from `current` (through any path)?"""
    seen: set[PaymentStatus] = set()
    frontier = set(ALLOWED[current])
    while frontier:
        status = frontier.pop()
        if status == target:
            return True
        seen.add(status)
        frontier |= ALLOWED[status] - seen
    return False


def mark_changed(session) -> None:
    """Tell pyramid_tm that a plain statement wrote (else it rolls the request back); sessions
    without a transaction manager (commands, tests) commit themselves and are left alone."""
    manager = session.info.get(TRANSACTION_MANAGER_KEY)
    if manager is not None:
        zope.sqlalchemy.mark_changed(session, manager)


@functools.cache
def payment_columns() -> tuple[tuple[str, str], ...]:
    """(column name, Payment attribute) of every column, in the table's order."""
    mapper = sa.inspect(Payment)
    return tuple(
        (column.name, mapper.get_property_by_column(column).key)
        for column in Payment.__table__.columns
    )


@functools.cache
def _column_of() -> dict[str, str]:
    return {key: name for name, key in payment_columns()}


@functools.cache
def payment_select_list() -> str:
    """The payments columns LockedPayment is made of, for a statement's SELECT list."""
    return ", ".join(f'payments."{name}"' for name, _key in payment_columns())


class LockedPayment:
    """A payments row (every column, under Payment's attribute names) read by a plain
    SELECT ... FOR UPDATE: what deciding on a payment and moving it needs, without the ORM's
    identity map, instrumentation and unit of work. `apply_transition` keeps it current."""

    def __init__(self, row: Sequence[Any]) -> None:
        self.__dict__.update(zip([key for _name, key in payment_columns()], row, strict=True))

    def __repr__(self) -> str:
        return f"<LockedPayment {self.reference} {self.status}>"


def lock_payment(
    session,
    *,
    merchant_id: uuid.UUID | None = None,
    reference: str | None = None,
    payment_id: uuid.UUID | None = None,
) -> Payment:
    """SELECT ... FOR UPDATE the payment (scoped to the merchant when one is given)."""
    stmt = sa.select(Payment).with_for_update()
    if payment_id is not None:
        stmt = stmt.where(Payment.id == payment_id)
    else:
        stmt = stmt.where(Payment.reference == reference)
    if merchant_id is not None:
        stmt = stmt.where(Payment.merchant_id == merchant_id)
    payment = session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()
    if payment is None:
        raise PaymentNotFound(reference or str(payment_id))
    return payment


def lock_payment_row(session, payment_id: uuid.UUID) -> LockedPayment | None:
    """SELECT ... FOR UPDATE one payment by id, as a LockedPayment (None: there is none)."""
    row = run_statement(
        session,
        # the columns are the table's own names, never input
        f"SELECT {payment_select_list()} FROM payments WHERE id = %(id)s FOR UPDATE",  # noqa: S608
        {"id": payment_id},
    )
    return None if row is None else LockedPayment(row)


@functools.cache
def _transition_sql(columns: tuple[str, ...], also: str | None) -> str:
    # composed of the table's own column names and constant SQL, never of input
    sets = ", ".join(f'"{column}" = %(c_{column})s' for column in columns)
    ctes = [
        f"moved AS (UPDATE payments SET {sets} WHERE id = %(t_payment_id)s RETURNING 1)",  # noqa: S608
        "step AS (INSERT INTO payment_transitions (id, payment_id, merchant_id, from_status,"
        " to_status, source, actor, reason, created_at) VALUES (%(t_id)s, %(t_payment_id)s,"
        " %(t_merchant_id)s, %(t_from)s, %(t_to)s, %(t_source)s, %(t_actor)s, %(t_reason)s,"
        " %(t_created_at)s))",
        f"event AS ({INSERT_EVENT_SQL})",
    ]
    if also is not None:
        ctes.append(f"also AS ({also})")
    # the look for parked webhooks is gateways' business, but asked here it costs no round
    # trip; this statement runs with the payment already locked, so its snapshot holds every
    # delivery ever parked for it (parking happens only under that lock)
    ctes_sql = ", ".join(ctes)
    return (
        f"WITH {ctes_sql} SELECT (SELECT count(*) FROM moved),"  # noqa: S608
        " EXISTS (SELECT 1 FROM gateway_webhooks"
        " WHERE payment_id = %(t_payment_id)s AND outcome = 'parked')"
    )


def _parameter(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict | list):
        return Jsonb(value)
    return value


def apply_transition(
    session,
    payment: Payment | LockedPayment,
    target: PaymentStatus | str,
    *,
    source: str,
    settings,
    actor: str | None = None,
    reason: str | None = None,
    correlation_id: str | None = None,
    also: tuple[str, dict[str, Any]] | None = None,
    **changes,
) -> PaymentTransition:
    """Move a payment (already locked by `lock_payment`) to `target`, or raise InvalidTransition.

    `changes` are column values set together with the status (gateway_reference, failure_code,
    failure_reason, amount_refunded, gateway_fee, net_amount, ...). `also`: one more
    data-modifying statement (SQL with %(d_...)s parameters, and those parameters) to run in
    the transition's round trip, e.g. recording what caused it.
    """
    target = PaymentStatus(target)
    current = PaymentStatus(payment.status)
    if not can_transition(current, target):
        raise InvalidTransition(current, target)
    gateway_fee = changes.get("gateway_fee")
    if gateway_fee is not None and not 0 <= gateway_fee <= payment.amount:
        raise ValidationFailed(
            "gateway_fee must be between 0 and the payment amount",
            details=[{"field": "gateway_fee", "message": "out of range"}],
        )
    column_of = _column_of()
    unknown = changes.keys() - column_of.keys()
    if unknown:
        raise TypeError(f"payments has no column for {sorted(unknown)}")
    now = utcnow()
    values: dict[str, Any] = dict(changes)
    values["status"] = target

    def after(key: str) -> Any:
        return values[key] if key in values else getattr(payment, key)

    if target is S.COMPLETED:
        values["platform_fee"] = platform_fee(
            after("amount"),
            payment.currency,
            settings.platform_fee_percent,
            settings.platform_fee_fixed,
        )
        values["gateway_fee"] = after("gateway_fee") or 0
    if target in SETTLED:
        # derived on every settled transition, so refunds can never let it drift
        values["net_amount"] = (
            after("amount")
            - after("platform_fee")
            - after("gateway_fee")
            - after("amount_refunded")
        )
    column = PHASE_COLUMN.get(target)
    if column is not None:
        values[column] = now
    values["version"] = payment.version + 1
    values["updated_at"] = now
    values["updated_by"] = actor

    # what the ORM still holds for this transaction goes first (a no-op when it holds nothing)
    session.flush()
    orm_state = getattr(payment, "_sa_instance_state", None)
    for key, value in values.items():
        if orm_state is not None:
            set_committed_value(payment, key, value)
        else:
            setattr(payment, key, value)

    transition = PaymentTransition(
        id=uuid.uuid4(),
        payment_id=payment.id,
        merchant_id=payment.merchant_id,
        from_status=current,
        to_status=target,
        source=source,
        actor=actor,
        reason=reason,
        created_at=now,
    )
    event_id = uuid.uuid4()
    columns = tuple(sorted(column_of[key] for key in values))
    params = {f"c_{column_of[key]}": _parameter(value) for key, value in values.items()}
    params.update(
        t_id=transition.id,
        t_payment_id=payment.id,
        t_merchant_id=payment.merchant_id,
        t_from=current.value,
        t_to=target.value,
        t_source=source,
        t_actor=actor,
        t_reason=reason,
        t_created_at=now,
    )
    params.update(
        event_params(
            event_id=event_id,
            merchant_id=payment.merchant_id,
            type=EVENT_TYPE[target],
            # payment_event_data(payment), serialized straight to JSON text
            data_json=PaymentOut.from_payment(payment, settings.public_url).model_dump_json(),
            payment_id=payment.id,
            correlation_id=correlation_id,
            created_at=now,
        )
    )
    also_sql = None
    if also is not None:
        also_sql, also_params = also
        params.update(also_params)
    moved, parked = run_statement(session, _transition_sql(columns, also_sql), params)
    mark_changed(session)
    if moved != 1:
        raise StaleDataError(f"the transition of payment {payment.id} updated {moved} rows")
    publish_after_commit(session, payment.merchant_id, event_id)
    setattr(transition, PARKED_WEBHOOKS, parked)
    for listener in list(_listeners):
        listener(session, payment, transition, settings)
    return transition
