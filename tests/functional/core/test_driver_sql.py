"""DriverSQL and run_statement: statements handed to psycopg as written, inside the session's
transaction."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from payportal.db import DriverSQL
from payportal.merchants.models import Merchant, MerchantStatus, MerchantType


def test_named_placeholders_become_psycopgs_and_casts_stay():
    statement = DriverSQL("SELECT CAST(:a AS int) + :b::int AS total WHERE :a > 0")
    assert statement.sql == "SELECT CAST(%(a)s AS int) + %(b)s::int AS total WHERE %(a)s > 0"


def test_a_literal_percent_is_refused_rather_than_misread():
    with pytest.raises(ValueError, match="literal %"):
        DriverSQL("SELECT 'x' WHERE name LIKE 'a%'")


def test_rows_come_back_by_name_and_see_what_the_session_has_not_flushed(dbsession):
    dbsession.add(
        Merchant(
            name="Driver Books",
            email="driver-books@example.com",
            password_hash="x",
            merchant_type=MerchantType.BUSINESS,
            status=MerchantStatus.ACTIVE,
            created_by="test",
        )
    )
    row = DriverSQL("SELECT name, status FROM merchants WHERE email = :email").first(
        dbsession, {"email": "driver-books@example.com"}
    )
    assert (row.name, row.status) == ("Driver Books", "active")


def test_it_writes_inside_the_sessions_transaction(dbsession):
    DriverSQL(
        "INSERT INTO merchants (id, name, email, password_hash, merchant_type, status,"
        " created_at, updated_at) VALUES (gen_random_uuid(), :name, :email, 'x', 'business',"
        " 'active', now(), now())"
    ).run(dbsession, {"name": "Rolled Books", "email": "rolled-books@example.com"})
    count = (
        sa.select(sa.func.count())
        .select_from(Merchant)
        .where(Merchant.email == "rolled-books@example.com")
    )
    assert dbsession.scalar(count) == 1
    dbsession.rollback()
    assert dbsession.scalar(count) == 0
