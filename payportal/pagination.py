"""Keyset (cursor) pagination, newest first on (created_at, id): page 10,000 costs as page 1."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from payportal.db import select_rows
from payportal.errors import ValidationFailed

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class ListQuery(BaseModel):
    """The paging parameters every list accepts; lists add their filters by subclassing."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=200)


class Page(BaseModel, Generic[T]):
    data: list[T]
    has_more: bool
    next_cursor: str | None


def encode_cursor(created_at: dt.datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, row_id = json.loads(raw)
        position = dt.datetime.fromisoformat(created_at), uuid.UUID(row_id)
    except (ValueError, TypeError):
        raise ValidationFailed(
            "cursor is not one this API returned",
            code="invalid_cursor",
            details=[{"field": "cursor", "message": "use next_cursor from the previous page"}],
        ) from None
    if position[0].tzinfo is None:
        raise ValidationFailed(
            "cursor is not one this API returned",
            code="invalid_cursor",
            details=[{"field": "cursor", "message": "invalid"}],
        )
    return position


def ordered_page(stmt: sa.Select, model, *, after_cursor: bool) -> sa.Select:
    """`stmt` newest first and one page deep (binds `page_limit`), after a cursor's position
    when asked (binds `cursor_created_at` and `cursor_id`): a statement that can be built once
    and run with page_params."""
    created_at, row_id = model.created_at, model.id
    if after_cursor:
        position = (
            sa.bindparam("cursor_created_at", type_=created_at.type),
            sa.bindparam("cursor_id", type_=row_id.type),
        )
        stmt = stmt.where(sa.tuple_(created_at, row_id) < sa.tuple_(*position))
    return stmt.order_by(created_at.desc(), row_id.desc()).limit(
        sa.bindparam("page_limit", type_=sa.Integer)
    )


def page_params(limit: int, cursor: str | None) -> dict[str, Any]:
    """The values of ordered_page's parameters: one row more than the page, to tell whether
    another page follows."""
    params: dict[str, Any] = {"page_limit": limit + 1}
    if cursor:
        params["cursor_created_at"], params["cursor_id"] = decode_cursor(cursor)
    return params


def finish_page(rows: list[Any], limit: int) -> tuple[list[Any], bool, str | None]:
    """(the page's rows, has_more, next_cursor) from the rows ordered_page returned."""
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if has_more and rows else None
    return rows, has_more, next_cursor


def keyset_page(
    session, stmt: sa.Select, model, limit: int, cursor: str | None, *, scalars: bool = True
) -> tuple[list[Any], bool, str | None]:
    """Run `stmt` (already filtered) one page deep; returns (rows, has_more, next_cursor)."""
    params = page_params(limit, cursor)
    stmt = ordered_page(stmt, model, after_cursor=bool(cursor))
    # rows of columns need none of the ORM's execute machinery
    result = (
        session.execute(stmt, params).scalars() if scalars else select_rows(session, stmt, params)
    )
    return finish_page(result.all(), limit)
