"""How the API writes a timestamp: ISO 8601 in UTC, with a Z."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema


def iso_z(value: dt.datetime | None) -> str | None:
    """ISO 8601 UTC with a Z, as the API contract shows every timestamp."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# A response's timestamp: written by iso_z whatever its time zone, and documented in the
# OpenAPI document as what it is, a date-time string, so generated clients parse it.
Timestamp = Annotated[
    dt.datetime,
    PlainSerializer(iso_z, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
