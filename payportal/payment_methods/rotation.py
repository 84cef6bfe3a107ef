"""Key rotation: re-seal every stored secret under the keyring's first key, in batches."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from payportal.crypto import DecryptionError, Keyring
from payportal.events.endpoints import secret_context as webhook_secret_context
from payportal.events.models import WebhookEndpoint
from payportal.payment_methods.models import PaymentMethod
from payportal.payment_methods.services import sealing_context

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True)
class SealedColumn:
    """A column of sealed values, and the associated data each row's value was sealed with."""

    label: str
    model: type
    column: str
    context: Callable[[object], str]


SEALED_COLUMNS = (
    SealedColumn(
        "payment_methods.sealed_details", PaymentMethod, "sealed_details", sealing_context
    ),
    SealedColumn(
        "webhook_endpoints.sealed_secret",
        WebhookEndpoint,
        "sealed_secret",
        lambda endpoint: webhook_secret_context(endpoint.id),
    ),
)


@dataclass
class RotationReport:
    label: str
    rotated: int = 0
    current: int = 0
    failed: list[str] = field(default_factory=list)


def rotate_column(
    session_factory, keyring: Keyring, sealed: SealedColumn, *, batch_size: int
) -> RotationReport:
    """Walk the table by id, one committed transaction per batch, so a crash loses one batch."""
    model, column = sealed.model, getattr(sealed.model, sealed.column)
    report = RotationReport(sealed.label)
    last_id = None
    while True:
        with session_factory() as session, session.begin():
            stmt = sa.select(model).where(column.is_not(None)).order_by(model.id).limit(batch_size)
            if last_id is not None:
                stmt = stmt.where(model.id > last_id)
            # rows are locked only for the length of their batch; soft-deleted rows rotate too
            rows = session.execute(stmt.with_for_update()).scalars().all()
            if not rows:
                return report
            for row in rows:
                token = getattr(row, sealed.column)
                context = sealed.context(row)
                try:
                    if not keyring.needs_rotation(token):
                        report.current += 1
                        continue
                    plaintext = keyring.decrypt(token, context)
                except DecryptionError as exc:
                    # left as it is: the key it needs is missing or the value was tampered with
                    log.error("cannot re-seal %s of row %s: %s", sealed.label, row.id, exc)
                    report.failed.append(str(row.id))
                    continue
                setattr(row, sealed.column, keyring.encrypt(plaintext, context))
                report.rotated += 1
            last_id = rows[-1].id


def rotate_encryption_key(
    session_factory, keyring: Keyring, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> list[RotationReport]:
    return [
        rotate_column(session_factory, keyring, sealed, batch_size=batch_size)
        for sealed in SEALED_COLUMNS
    ]
