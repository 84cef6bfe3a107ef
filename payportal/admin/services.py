"""What the operator console reads: merchants by status or search, and their audit trail.
Read-only queries; status changes go through the identity slice's service."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from payportal.merchants.models import AuditEntry, Merchant
from payportal.pagination import keyset_page


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_merchants(
    session, *, status: str | None, q: str | None, limit: int, cursor: str | None
) -> tuple[list[Merchant], bool, str | None]:
    """Newest first; `q` matches the start of the email, name or business name."""
    stmt = sa.select(Merchant)
    if status:
        stmt = stmt.where(Merchant.status == status)
    if q:
        prefix = _escape_like(q) + "%"
        stmt = stmt.where(
            sa.or_(
                Merchant.email.like(prefix.lower(), escape="\\"),
                Merchant.name.ilike(prefix, escape="\\"),
                Merchant.business_name.ilike(prefix, escape="\\"),
            )
        )
    return keyset_page(session, stmt, Merchant, limit, cursor)


def count_by_status(session) -> dict[str, int]:
    rows = session.execute(sa.select(Merchant.status, sa.func.count()).group_by(Merchant.status))
    return {str(status): count for status, count in rows}


def audit_trail(session, merchant_id: uuid.UUID, limit: int = 50) -> list[AuditEntry]:
    return list(
        session.execute(
            sa.select(AuditEntry)
            .where(AuditEntry.merchant_id == merchant_id)
            .order_by(AuditEntry.created_at.desc())
            .limit(limit)
        ).scalars()
    )
