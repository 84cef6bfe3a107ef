"""GET payments/{reference} and GET payments: tenancy, every filter, keyset pages."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

import payportal.db
from payportal.payments.models import Payment
from tests.factories import create_api_key
from tests.functional.payments.conftest import API, initialize


def test_get_a_payment(testapp, merchant):
    _m, headers = merchant
    created = initialize(testapp, headers, amount=777).json["payment"]
    got = testapp.get(f"{API}/{created['reference']}", headers=headers).json["payment"]
    assert got == created


@pytest.mark.parametrize("name", ["pay_doesnotexist00000000000", "pay_", "something", "initialize"])
def test_unknown_references_are_404(testapp, merchant, name):
    _m, headers = merchant
    r = testapp.get(f"{API}/{name}", headers=headers, status=(404, 405))
    assert r.json["error"]["type"] in {"not_found", "invalid_request"}


def test_without_credentials_reads_are_401(testapp, merchant, make_payment):
    m, _headers = merchant
    payment = make_payment(m)
    for path in (API, f"{API}/{payment.reference}", f"{API}/{payment.reference}/events"):
        assert testapp.get(path, status=401).json["error"]["type"] == "authentication_error"


def _at(session, payment: Payment, when: dt.datetime) -> Payment:
    session.execute(sa.update(Payment).where(Payment.id == payment.id).values(created_at=when))
    return payment


def refs(response) -> list[str]:
    return [p["reference"] for p in response.json["data"]]


def test_every_filter(testapp, dbsession, merchant, other_merchant, make_payment):
    m, headers = merchant
    other, _ = other_merchant
    base = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    a = _at(dbsession, make_payment(m, customer_email="ada@example.com"), base)
    b = _at(
        dbsession,
        make_payment(m, "completed", gateway="stripe", customer_email="bob@example.com"),
        base + dt.timedelta(days=1),
    )
    c = _at(
        dbsession,
        make_payment(m, "failed", currency="EUR", customer_email="ADA@example.com"),
        base + dt.timedelta(days=2),
    )
    d = _at(dbsession, make_payment(m, "refunded", gateway="stripe"), base + dt.timedelta(days=3))
    make_payment(other, customer_email="ada@example.com")  # never in this merchant's lists

    def listed(**params):
        return refs(testapp.get(API, params, headers=headers))

    assert listed() == [d.reference, c.reference, b.reference, a.reference]
    assert listed(status="completed") == [b.reference]
    assert listed(status="refunded") == [d.reference]
    assert listed(gateway="stripe") == [d.reference, b.reference]
    assert listed(currency="EUR") == [c.reference]
    assert listed(customer_email="ada@example.com") == [c.reference, a.reference]
    assert listed(customer_email="ADA@EXAMPLE.COM") == [c.reference, a.reference]
    assert listed(created_from="2030-01-02T00:00:00Z") == [d.reference, c.reference, b.reference]
    assert listed(created_to="2030-01-02T00:00:00Z") == [a.reference]
    assert listed(created_from="2030-01-02T00:00:00+00:00", created_to="2030-01-04T00:00:00Z") == [
        c.reference,
        b.reference,
    ]
    assert listed(gateway="stripe", status="completed", currency="USD") == [b.reference]
    assert listed(q="ada@") == [c.reference, a.reference]
    assert listed(q="BOB") == [b.reference]
    assert listed(q=b.reference[:12]) == [b.reference]
    assert listed(q=b.reference) == [b.reference]
    # LIKE wildcards in q are literal characters
    assert listed(q="%") == []
    assert listed(q="_da") == []


def test_keyset_pages_cover_everything_once_newest_first(
    testapp, dbsession, merchant, make_payment
):
    m, headers = merchant
    base = dt.datetime(2030, 6, 1, tzinfo=dt.UTC)
    payments = [make_payment(m) for _ in range(45)]
    for i, payment in enumerate(payments):
        # groups of three share one instant: the id breaks the tie, so no row is lost or repeated
        _at(dbsession, payment, base + dt.timedelta(seconds=i // 3))
    seen, cursor, pages = [], None, []
    while True:
        params = {"limit": 20, **({"cursor": cursor} if cursor else {})}
        page = testapp.get(API, params, headers=headers).json
        pages.append((len(page["data"]), page["has_more"]))
        seen += [(p["created_at"], p["id"]) for p in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [(20, True), (20, True), (5, False)]
    assert len(set(seen)) == 45
    assert seen == sorted(seen, reverse=True)


def test_a_filtered_page_keeps_its_filter_across_pages(testapp, merchant, make_payment):
    m, headers = merchant
    completed = [make_payment(m, "completed").reference for _ in range(5)]
    for _ in range(5):
        make_payment(m)
    first = testapp.get(API, {"status": "completed", "limit": 3}, headers=headers).json
    second = testapp.get(
        API, {"status": "completed", "limit": 3, "cursor": first["next_cursor"]}, headers=headers
    ).json
    assert sorted(refs_of(first) + refs_of(second)) == sorted(completed)
    assert second["has_more"] is False


def test_pages_with_the_same_filters_run_one_statement_built_once(
    testapp, merchant, make_payment, monkeypatch
):
    """A list request binds its values to the statement compiled for its filters the first
    time they were asked for: no SQL is put together (or compiled) per page."""
    m, headers = merchant
    for status in ("completed", "completed", "completed", "failed"):
        make_payment(m, status)
    run: list = []
    real_run_statement = payportal.db.run_statement

    def noting(session, sql, params, **kwargs):
        if "FROM payments" in sql and "LIMIT" in sql:
            run.append(sql)
        return real_run_statement(session, sql, params, **kwargs)

    monkeypatch.setattr(payportal.db, "run_statement", noting)
    first = testapp.get(API, {"status": "completed", "limit": 1}, headers=headers).json
    again = testapp.get(API, {"status": "failed", "limit": 2}, headers=headers).json
    after = {"status": "completed", "limit": 1, "cursor": first["next_cursor"]}
    second = testapp.get(API, after, headers=headers).json
    third = testapp.get(
        API, {**after, "limit": 2, "cursor": second["next_cursor"]}, headers=headers
    ).json

    assert [len(refs_of(page)) for page in (first, again, second, third)] == [1, 1, 1, 1]
    assert len(set(refs_of(first) + refs_of(second) + refs_of(third))) == 3
    # page 1 of two statuses: one statement; pages after a cursor: another one
    assert len(run) == 4
    assert run[0] is run[1]
    assert run[2] is run[3]
    assert run[0] is not run[2]


def refs_of(page: dict) -> list[str]:
    return [p["reference"] for p in page["data"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
        ({"status": "paid"}, "status"),
        ({"currency": "XYZ"}, "currency"),
        ({"gateway": "square"}, "gateway"),
        ({"created_from": "2030-01-01T00:00:00"}, "created_from"),  # no time zone
        ({"created_to": "yesterday"}, "created_to"),
        ({"sort": "amount"}, "sort"),
    ],
)
def test_bad_list_parameters_are_422(testapp, merchant, params, field):
    _m, headers = merchant
    r = testapp.get(API, params, headers=headers, status=422)
    assert r.json["error"]["details"][0]["field"] == field


def test_an_api_key_reads_the_same_list(testapp, dbsession, merchant, make_payment):
    m, headers = merchant
    make_payment(m)
    _row, key = create_api_key(dbsession, m)
    by_key = testapp.get(API, headers={"Authorization": f"Bearer {key}"}).json
    assert by_key == testapp.get(API, headers=headers).json


def test_reserved_names_do_not_query_payments_by_reference(testapp, connection, merchant):
    _m, headers = merchant
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    sa.event.listen(connection, "before_cursor_execute", record)
    try:
        testapp.get(f"{API}/statistics/summary", headers=headers)
        initialize(testapp, headers)
        testapp.get(f"{API}/initialize", headers=headers, status=405)
    finally:
        sa.event.remove(connection, "before_cursor_execute", record)
    lookups = [s for s in statements if "payments.reference =" in s]
    assert lookups == []


def test_timestamps_are_utc_with_z_whatever_the_servers_time_zone(testapp, wsgi_app, merchant):
    """Sessions run with TimeZone=UTC (make_engine), so PaymentOut needs no per-field work."""
    _m, headers = merchant
    created = initialize(testapp, headers).json["payment"]
    got = testapp.get(f"{API}/{created['reference']}", headers=headers).json["payment"]
    listed = testapp.get(API, headers=headers).json["data"][0]
    for payment in (created, got, listed):
        for field in ("created_at", "updated_at", "expires_at"):
            assert payment[field].endswith("Z"), payment[field]
            dt.datetime.fromisoformat(payment[field])
    with wsgi_app.registry.dbengine.connect() as conn:
        assert conn.scalar(sa.text("SHOW TimeZone")) == "UTC"


def test_a_read_ends_with_commit_so_prepared_statements_survive(
    live_testapp, wsgi_app, committed_db, settings
):
    """psycopg drops a connection's prepared statements on every ROLLBACK (and sends DEALLOCATE
    ALL): reads end with COMMIT, as writes do (payportal.db.RequestTransactionEvents)."""
    import psycopg
    from sqlalchemy.orm import Session

    from tests.factories import merchant_headers

    with Session(committed_db, expire_on_commit=False) as session, session.begin():
        _merchant, headers = merchant_headers(session, settings)
    ends: list[str] = []

    def on_reset(dbapi_connection, record, state):
        # the pool rolls back what is left open; after a COMMIT psycopg sends nothing
        if dbapi_connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            ends.append("rollback on return to the pool")

    listeners = [
        (committed_db, "commit", lambda conn: ends.append("commit")),
        (committed_db, "rollback", lambda conn: ends.append("rollback")),
        (committed_db.pool, "reset", on_reset),
    ]
    for target, name, fn in listeners:
        sa.event.listen(target, name, fn)
    try:
        live_testapp.get(API, headers=headers)
        live_testapp.get(API, headers=headers)
    finally:
        for target, name, fn in listeners:
            sa.event.remove(target, name, fn)
    assert ends == ["commit", "commit"]


def test_a_405_names_the_methods_the_path_takes(testapp, merchant):
    _m, headers = merchant
    reference = initialize(testapp, headers).json["payment"]["reference"]
    response = testapp.delete(f"{API}/{reference}", headers=headers, status=405)
    assert response.headers["Allow"] == "GET, HEAD"
    response = testapp.get(f"{API}/initialize", headers=headers, status=405)
    assert response.headers["Allow"] == "POST"
    assert testapp.head(f"{API}/{reference}", headers=headers).status_int == 200
