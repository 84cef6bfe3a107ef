"""The account audit log: who changed what about a merchant, when, from what, to what, and why."""

from __future__ import annotations

import uuid
from typing import Any

from payportal.db import utcnow
from payportal.merchants.models import AuditEntry


def record_audit(
    session,
    *,
    merchant_id: uuid.UUID | None,
    actor: str,
    action: str,
    from_value: str | None = None,
    to_value: str | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction: it exists exactly when the change does."""
    entry = AuditEntry(
        merchant_id=merchant_id,
        actor=actor,
        action=action,
        from_value=from_value,
        to_value=to_value,
        reason=reason,
        data=data or {},
        created_at=utcnow(),
    )
    session.add(entry)
    return entry
