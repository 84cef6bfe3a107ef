"""select_rows: column rows past the ORM's execute machinery, still seeing pending changes."""

from __future__ import annotations

import sqlalchemy as sa

from payportal.db import select_rows
from payportal.merchants.models import Merchant
from tests.factories import pending_merchant


def test_rows_include_what_the_session_has_not_flushed_yet(dbsession):
    pending_merchant(dbsession, "Pending Books")
    rows = select_rows(
        dbsession,
        sa.select(Merchant.name).where(Merchant.email == sa.bindparam("email")),
        {"email": "pending-books@example.com"},
    ).all()
    assert [row.name for row in rows] == ["Pending Books"]
