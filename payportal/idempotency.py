"""Idempotency keys: a retried POST replays the first response and does nothing else.

The key row is inserted inside the request's own transaction, before the work. A concurrent
duplicate blocks on the primary key until the first request ends: if it committed, the duplicate
replays the stored response; if it rolled back, the duplicate does the work itself. So the
response is stored exactly when the work committed, and a key can never yield two payments.
Requests that fail (validation or any other error) roll back and leave no key behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
import zope.sqlalchemy
from pyramid.response import Response
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, mapped_column

from payportal.db import Base, utcnow
from payportal.errors import Conflict, InvalidRequest, ValidationFailed

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
RETENTION = dt.timedelta(hours=24)
# How long a duplicate waits for the first request before answering 409 idempotency_key_in_use.
WAIT_FOR_FIRST = "5s"
_VALID_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    merchant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("merchants.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    request_method: Mapped[str] = mapped_column(sa.String(10))
    request_path: Mapped[str] = mapped_column(sa.String(500))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    response_status: Mapped[int | None] = mapped_column(sa.SmallInteger)
    response_body: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=sa.func.now(), default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (sa.Index("ix_idempotency_keys_created_at", "created_at"),)


@dataclass(frozen=True)
class Claim:
    merchant_id: uuid.UUID
    key: str


def fingerprint(method: str, path: str, raw_body: bytes) -> str:
    """Same method, path and JSON body (whatever its key order or spacing) -> same fingerprint."""
    body = raw_body
    if raw_body.strip():
        try:
            body = json.dumps(json.loads(raw_body), sort_keys=True, separators=(",", ":")).encode()
        except ValueError:
            body = raw_body
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def claim(request, raw_body: bytes) -> tuple[Claim | None, Response | None]:
    """Claim the request's key, or return the stored response to replay. (None, None): no key."""
    key = request.headers.get(HEADER)
    identity = request.identity
    if key is None or identity is None or identity.merchant_id is None:
        return None, None
    if not _VALID_KEY.match(key):
        raise InvalidRequest(
            f"{HEADER} must be 1 to 255 printable ASCII characters", code="invalid_idempotency_key"
        )
    session = request.dbsession
    values = {
        "merchant_id": identity.merchant_id,
        "key": key,
        "request_method": request.method,
        "request_path": request.path_info[:500],
        "fingerprint": fingerprint(request.method, request.path_info, raw_body),
    }
    session.execute(sa.text(f"SET LOCAL lock_timeout = '{WAIT_FOR_FIRST}'"))
    try:
        inserted = session.execute(
            insert(IdempotencyKey)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        ).first()
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
            raise Conflict(
                "a request with this Idempotency-Key is still in progress",
                code="idempotency_key_in_use",
            ) from None
        raise
    session.execute(sa.text("SET LOCAL lock_timeout = DEFAULT"))
    zope.sqlalchemy.mark_changed(session)
    if inserted is not None:
        return Claim(identity.merchant_id, key), None
    stored = session.execute(
        sa.select(IdempotencyKey).where(
            IdempotencyKey.merchant_id == identity.merchant_id, IdempotencyKey.key == key
        )
    ).scalar_one()
    if stored.fingerprint != values["fingerprint"]:
        raise ValidationFailed(
            f"this {HEADER} was used with another request body or path",
            code="idempotency_key_reused",
            details=[{"field": HEADER, "message": "already used with a different request"}],
        )
    if stored.response_status is None:
        raise Conflict(
            "a request with this Idempotency-Key is still in progress",
            code="idempotency_key_in_use",
        )
    response = Response(
        body=stored.response_body or b"",
        status=stored.response_status,
        content_type="application/json",
        charset="utf-8",
    )
    response.headers[REPLAY_HEADER] = "true"
    return None, response


def complete(request, claim_: Claim, response: Response) -> None:
    """Store the response with the key, in the same transaction as the work it describes."""
    request.dbsession.execute(
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.merchant_id == claim_.merchant_id, IdempotencyKey.key == claim_.key)
        .values(
            response_status=response.status_int, response_body=response.body, completed_at=utcnow()
        )
    )


def purge_expired(session, now: dt.datetime | None = None) -> int:
    """Delete keys older than the retention window; returns how many went."""
    cutoff = (now or utcnow()) - RETENTION
    result = session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    return result.rowcount or 0
