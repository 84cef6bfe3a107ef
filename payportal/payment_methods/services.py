"""Payment methods: create, list, update, soft-delete, make default; sealing the sensitive fields.

Every write takes the merchant's payment-method lock first (a transaction-scoped advisory lock),
then the row: two requests moving the default can never interleave, so the partial unique index
`uq_payment_methods_one_default` is a last wall that no correct request ever hits.
"""

from __future__ import annotations

import json
import uuid

import sqlalchemy as sa

from payportal.crypto import Keyring
from payportal.db import utcnow
from payportal.errors import Conflict, NotFound, ValidationFailed
from payportal.events.services import append_event
from payportal.pagination import keyset_page
from payportal.payment_methods.cards import card_expires_at, validate_card_number
from payportal.payment_methods.models import (
    LAPSING_STATUSES,
    PaymentMethod,
    PaymentMethodStatus,
    PaymentMethodType,
)
from payportal.payment_methods.schemas import (
    CreatePaymentMethod,
    PaymentMethodOut,
    UpdatePaymentMethod,
    payment_method_event_data,
)

# First key of pg_advisory_xact_lock(int, int): the namespace of "a merchant's payment methods".
METHODS_LOCK_NAMESPACE = 0x706D6466  # 'pmdf'


class PaymentMethodNotFound(NotFound):
    def __init__(self, method_id: uuid.UUID | str):
        super().__init__(f"no payment method {method_id}")


class PaymentMethodNotActive(Conflict):
    code = "payment_method_not_active"

    def __init__(self, status: str):
        super().__init__(
            f"only an active payment method can be the default; this one is {status}",
            details=[{"field": "is_default", "message": f"payment method is {status}"}],
        )


class PaymentMethodExpired(Conflict):
    code = "payment_method_expired"

    def __init__(self):
        super().__init__(
            "the card's expiry month has ended; it cannot be made active again",
            details=[{"field": "status", "message": "card has expired"}],
        )


class CardExpired(ValidationFailed):
    code = "card_expired"

    def __init__(self, exp_month: int, exp_year: int):
        super().__init__(
            f"the card expired at the end of {exp_month:02d}/{exp_year}",
            details=[{"field": "card.exp_year", "message": "card has expired"}],
        )


def sealing_context(method: PaymentMethod) -> str:
    """Associated data binding sealed details to their row: copied elsewhere, they do not open."""
    return f"payment_methods.sealed_details:{method.id}"


def seal_details(keyring: Keyring, method: PaymentMethod, details: dict[str, str]) -> str:
    return keyring.encrypt(json.dumps(details, sort_keys=True), sealing_context(method))


def open_details(keyring: Keyring, method: PaymentMethod) -> dict[str, str]:
    """The sensitive fields in clear, for the code that must hand them to a gateway."""
    if method.sealed_details is None:
        return {}
    return json.loads(keyring.decrypt(method.sealed_details, sealing_context(method)))


def lock_merchant_methods(session, merchant_id: uuid.UUID) -> None:
    """Serialize writes to one merchant's payment methods until this transaction ends."""
    session.execute(
        sa.select(
            sa.func.pg_advisory_xact_lock(
                METHODS_LOCK_NAMESPACE, sa.func.hashtext(str(merchant_id))
            )
        )
    )


def _live(merchant_id: uuid.UUID) -> list[sa.ColumnElement[bool]]:
    return [PaymentMethod.merchant_id == merchant_id, PaymentMethod.deleted_at.is_(None)]


def find_payment_method(
    session, merchant_id: uuid.UUID, method_id: uuid.UUID
) -> PaymentMethod | None:
    """The merchant's live method with this id; another merchant's or a deleted one is None."""
    return session.execute(
        sa.select(PaymentMethod).where(PaymentMethod.id == method_id, *_live(merchant_id))
    ).scalar_one_or_none()


def lock_payment_method(session, merchant_id: uuid.UUID, method_id: uuid.UUID) -> PaymentMethod:
    """SELECT ... FOR UPDATE the merchant's live method, re-read from the database."""
    method = session.execute(
        sa.select(PaymentMethod)
        .where(PaymentMethod.id == method_id, *_live(merchant_id))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if method is None:
        raise PaymentMethodNotFound(method_id)
    return method


def list_payment_methods(
    session,
    merchant_id: uuid.UUID,
    *,
    method_type: PaymentMethodType | None,
    status: PaymentMethodStatus | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[PaymentMethod], bool, str | None]:
    stmt = sa.select(PaymentMethod).where(*_live(merchant_id))
    if method_type is not None:
        stmt = stmt.where(PaymentMethod.type == method_type)
    if status is not None:
        stmt = stmt.where(PaymentMethod.effective_status_is(status))
    return keyset_page(session, stmt, PaymentMethod, limit, cursor)


def _emit(session, method: PaymentMethod, event_type: str, correlation_id: str | None) -> None:
    append_event(
        session,
        merchant_id=method.merchant_id,
        type=event_type,
        data=payment_method_event_data(method),
        correlation_id=correlation_id,
    )


def _clear_defaults(
    session,
    merchant_id: uuid.UUID,
    *,
    keep: uuid.UUID | None,
    actor: str,
    correlation_id: str | None,
) -> None:
    """Unset the merchant's current default (under the merchant lock), one event each."""
    stmt = sa.select(PaymentMethod).where(*_live(merchant_id), PaymentMethod.is_default)
    if keep is not None:
        stmt = stmt.where(PaymentMethod.id != keep)
    previous = session.execute(
        stmt.with_for_update().execution_options(populate_existing=True)
    ).scalars()
    for method in previous:
        method.is_default = False
        method.updated_by = actor
        _emit(session, method, "payment_method.updated", correlation_id)
    # the old default must be written before the new one, or the unique index sees two
    session.flush()


def _sensitive_fields(method: PaymentMethod, body: CreatePaymentMethod) -> dict[str, str]:
    """Copy the displayable fields onto the row; return the ones that may only be stored sealed."""
    if body.card is not None:
        card = body.card
        digits, brand = validate_card_number(card.number)
        expires_at = card_expires_at(card.exp_month, card.exp_year)
        if expires_at <= utcnow():
            raise CardExpired(card.exp_month, card.exp_year)
        method.brand, method.last4 = brand, digits[-4:]
        method.exp_month, method.exp_year = card.exp_month, card.exp_year
        method.holder_name, method.expires_at = card.holder_name, expires_at
        return {"number": digits}
    if body.bank_account is not None:
        account = body.bank_account
        method.bank_name, method.holder_name = account.bank_name, account.account_holder_name
        method.last4 = account.account_number[-4:]
        return {"account_number": account.account_number}
    if body.mobile_money is not None:
        method.provider = body.mobile_money.provider
        method.last4 = body.mobile_money.phone_number[-4:]
        return {"phone_number": body.mobile_money.phone_number}
    return {}


def create_payment_method(
    session,
    keyring: Keyring,
    merchant_id: uuid.UUID,
    body: CreatePaymentMethod,
    *,
    actor: str,
    correlation_id: str | None = None,
) -> PaymentMethod:
    """Record a method; it becomes the default if asked, or if the merchant has none yet."""
    method = PaymentMethod(
        id=uuid.uuid4(),
        merchant_id=merchant_id,
        name=body.name,
        type=body.type,
        status=PaymentMethodStatus.ACTIVE,
        external_id=body.external_id,
        external_provider=body.external_provider,
        metadata_=dict(body.metadata),
        created_by=actor,
        updated_by=actor,
    )
    sensitive = _sensitive_fields(method, body)
    if sensitive:
        method.sealed_details = seal_details(keyring, method, sensitive)
    lock_merchant_methods(session, merchant_id)
    has_default = session.execute(
        sa.select(sa.exists().where(*_live(merchant_id), PaymentMethod.is_default))
    ).scalar_one()
    method.is_default = body.is_default if body.is_default is not None else not has_default
    if method.is_default and has_default:
        _clear_defaults(session, merchant_id, keep=None, actor=actor, correlation_id=correlation_id)
    session.add(method)
    session.flush()
    _emit(session, method, "payment_method.created", correlation_id)
    return method


def _record_lapse(method: PaymentMethod) -> None:
    """A write that finds a card past its month stores what readers already see: `expired`."""
    if method.effective_status is PaymentMethodStatus.EXPIRED:
        method.status = PaymentMethodStatus.EXPIRED


def _become_default(
    session, method: PaymentMethod, *, actor: str, correlation_id: str | None
) -> None:
    status = method.effective_status
    if status is not PaymentMethodStatus.ACTIVE:
        raise PaymentMethodNotActive(status)
    if method.is_default:
        return
    _clear_defaults(
        session, method.merchant_id, keep=method.id, actor=actor, correlation_id=correlation_id
    )
    method.is_default = True


def _set_status(method: PaymentMethod, status: str) -> None:
    target = PaymentMethodStatus(status)
    if target is PaymentMethodStatus.ACTIVE and method.effective_status is (
        PaymentMethodStatus.EXPIRED
    ):
        raise PaymentMethodExpired()
    method.status = target


def _save_if_changed(
    session,
    method: PaymentMethod,
    before: PaymentMethodOut,
    stored_status: PaymentMethodStatus,
    *,
    actor: str,
    correlation_id: str | None,
) -> None:
    # a write that changes nothing a client can see records no event
    if PaymentMethodOut.from_method(method) == before and method.status == stored_status:
        return
    method.updated_by = actor
    session.flush()
    if PaymentMethodOut.from_method(method) != before:
        _emit(session, method, "payment_method.updated", correlation_id)


def update_payment_method(
    session,
    merchant_id: uuid.UUID,
    method_id: uuid.UUID,
    changes: UpdatePaymentMethod,
    *,
    actor: str,
    correlation_id: str | None = None,
) -> PaymentMethod:
    """Rename, (de)activate, block, (un)set as default or replace metadata; one event if changed."""
    lock_merchant_methods(session, merchant_id)
    method = lock_payment_method(session, merchant_id, method_id)
    before, stored_status = PaymentMethodOut.from_method(method), method.status
    _record_lapse(method)
    if changes.name is not None:
        method.name = changes.name
    if changes.metadata is not None:
        method.metadata_ = dict(changes.metadata)
    if changes.status is not None:
        _set_status(method, changes.status)
    if changes.is_default is True:
        _become_default(session, method, actor=actor, correlation_id=correlation_id)
    elif changes.is_default is False:
        method.is_default = False
    _save_if_changed(
        session, method, before, stored_status, actor=actor, correlation_id=correlation_id
    )
    return method


def make_default(
    session,
    merchant_id: uuid.UUID,
    method_id: uuid.UUID,
    *,
    actor: str,
    correlation_id: str | None = None,
) -> PaymentMethod:
    """Make this method the merchant's only default (the old one is unset in the same commit)."""
    lock_merchant_methods(session, merchant_id)
    method = lock_payment_method(session, merchant_id, method_id)
    before, stored_status = PaymentMethodOut.from_method(method), method.status
    _record_lapse(method)
    _become_default(session, method, actor=actor, correlation_id=correlation_id)
    _save_if_changed(
        session, method, before, stored_status, actor=actor, correlation_id=correlation_id
    )
    return method


def delete_payment_method(
    session, merchant_id: uuid.UUID, method_id: uuid.UUID, *, actor: str
) -> None:
    """Soft delete: the row stays for the payments that used it, but no list or get shows it."""
    lock_merchant_methods(session, merchant_id)
    method = lock_payment_method(session, merchant_id, method_id)
    method.deleted_at = utcnow()
    method.is_default = False
    method.updated_by = actor
    session.flush()


def record_lapsed_methods(session, *, batch_size: int = 500) -> int:
    """Store `expired` on one batch of lapsed cards (readers see it already); returns how many.

    Each gets a payment_method.updated event, so integrations hear that a card ran out.
    """
    lapsed = session.execute(
        sa.select(PaymentMethod)
        .where(
            PaymentMethod.status.in_(LAPSING_STATUSES),
            PaymentMethod.expires_at <= sa.func.now(),
            PaymentMethod.deleted_at.is_(None),
        )
        .order_by(PaymentMethod.expires_at)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    ).scalars()
    count = 0
    for method in lapsed:
        method.status = PaymentMethodStatus.EXPIRED
        method.updated_by = "system"
        _emit(session, method, "payment_method.updated", None)
        count += 1
    session.flush()
    return count
