"""DriverSQL and run_statement: statements handed to psycopg as written, inside the session's
transaction."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from payportal.db import DriverSQL
from payportal.merchants.models import Merchant
from tests.factories import pending_merchant


def test_named_placeholders_become_psycopgs_and_casts_stay():
    statement = DriverSQL("SELECT CAST(:a AS int) + :b::int AS total WHERE :a > 0")
    assert statement.sql == "SELECT CAST(%(a)s AS int) + %(b)s::int AS total WHERE %(a)s > 0"


def test_a_statement_rendered_per_execution_is_refused():
    with pytest.raises(ValueError, match="rendered per execution"):
        DriverSQL.compile(sa.select(Merchant.id).where(Merchant.name.in_(sa.bindparam("names"))))


def test_a_literal_percent_is_refused_rather_than_misread():
    with pytest.raises(ValueError, match="literal %"):
        DriverSQL("SELECT 'x' WHERE name LIKE 'a%'")


def test_rows_come_back_by_name_and_see_what_the_session_has_not_flushed(dbsession):
    pending_merchant(dbsession, "Driver Books")
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


def test_a_core_statement_compiles_once_with_its_parameter_names(dbsession):
    for name in ("Compiled Books", "Compiled Games"):
        pending_merchant(dbsession, name)
    statement = DriverSQL.compile(
        sa.select(Merchant.name, Merchant.status)
        .where(Merchant.name.like(sa.bindparam("prefix")), Merchant.status == sa.bindparam("s"))
        .order_by(Merchant.name)
        .limit(sa.bindparam("page_limit", type_=sa.Integer))
    )
    assert "%(prefix)s" in statement.sql and "%(page_limit)s" in statement.sql
    rows = statement.all(dbsession, {"prefix": "Compiled %", "s": "active", "page_limit": 5})
    assert [(row.name, row.status) for row in rows] == [
        ("Compiled Books", "active"),
        ("Compiled Games", "active"),
    ]
    assert rows[0]._asdict() == {"name": "Compiled Books", "status": "active"}


def test_cursor_listeners_see_the_statement_as_sqlalchemys_own_would(dbsession, connection):
    seen = []

    def before(_conn, _cursor, statement, parameters, _context, _many):
        seen.append(("before", statement, parameters))

    def after(_conn, _cursor, statement, _parameters, _context, _many):
        seen.append(("after", statement))

    sa.event.listen(connection, "before_cursor_execute", before)
    sa.event.listen(connection, "after_cursor_execute", after)
    try:
        row = DriverSQL("SELECT :n::int + 1 AS next").first(dbsession, {"n": 41})
    finally:
        sa.event.remove(connection, "before_cursor_execute", before)
        sa.event.remove(connection, "after_cursor_execute", after)
    assert row.next == 42
    assert [entry for entry in seen if "AS next" in entry[1]] == [
        ("before", "SELECT %(n)s::int + 1 AS next", {"n": 41}),
        ("after", "SELECT %(n)s::int + 1 AS next"),
    ]


def test_sqlalchemys_echo_shows_the_statement_but_not_its_values(database_url, caplog):
    engine = sa.create_engine(database_url, echo=True, poolclass=sa.pool.NullPool)
    try:
        with Session(engine) as session, caplog.at_level("INFO", "sqlalchemy.engine"):
            row = DriverSQL("SELECT :email::text AS email").first(
                session, {"email": "ada@example.com"}
            )
    finally:
        engine.dispose()
    assert row.email == "ada@example.com"
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("sqlalchemy.engine")]
    assert "SELECT %(email)s::text AS email" in logged
    assert not any("ada@example.com" in message for message in logged)
