"""Scenarios over 1,000,000 payments of 1,000 merchants: API list pages (4) and the dashboard (7).

The volume database is seeded once by bench/seed_payments.py and reused by later runs.
"""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import database
import scenarios
import sqlalchemy as sa
from loadgen import Request, Workload
from report import Row
from servers import get, start_server
from sqlalchemy.orm import Session

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
SEED = "seed_payments.py"
VOLUME_DB = "payportal_bench_volume"
VOLUME_PAYMENTS = 1_000_000


def schema_fingerprint() -> str:
    """The migrations and the seed script as they are now; a reused database must match both.

    The project edits its initial migration in place, so `upgrade head` alone can miss a change.
    """
    digest = hashlib.sha256()
    for path in [*sorted((ROOT / "migrations" / "versions").glob("*.py")), BENCH_DIR / SEED]:
        digest.update(path.read_bytes())
    return "bench-seed:" + digest.hexdigest()[:16]


def database_comment(server) -> str | None:
    engine = sa.create_engine(server.url)
    with engine.connect() as conn:
        comment = conn.scalar(
            sa.text(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"
            ),
            {"n": VOLUME_DB},
        )
    engine.dispose()
    return comment


def ensure_volume(bench, server) -> str:
    """The seeded volume database's URL: reused when complete and of the current schema, else
    (re)seeded, which takes a minute or two."""
    url = server.database_url(VOLUME_DB)
    fingerprint = schema_fingerprint()
    present = 0
    if database.database_exists(server, VOLUME_DB):
        engine = sa.create_engine(url)
        present = scenarios.seeded_volume(engine)
        engine.dispose()
        if present >= VOLUME_PAYMENTS and database_comment(server) == fingerprint:
            bench.say(f"volume database {VOLUME_DB}: {present:,} payments, reused")
            return url
        reason = "schema or seed changed" if present >= VOLUME_PAYMENTS else "incomplete"
        bench.say(f"volume database {VOLUME_DB}: {reason}, seeding it again")
        admin = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{VOLUME_DB}" WITH (FORCE)'))
        admin.dispose()
    bench.say(f"seeding {VOLUME_PAYMENTS:,} payments into {VOLUME_DB} (once; later runs reuse it)")
    subprocess.run(
        [sys.executable, str(BENCH_DIR / SEED), VOLUME_DB, "--server", server.url],
        check=True,
    )
    admin = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"COMMENT ON DATABASE \"{VOLUME_DB}\" IS '{fingerprint}'"))
    admin.dispose()
    return url


def explain_list(url: str, merchant_id, cursor: str) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the SQL the list service sends for page 1 and the deep page."""
    from list_queries import LastStatement, explain

    from payportal.payments.schemas import PaymentListQuery
    from payportal.payments.services import list_payments

    engine = sa.create_engine(url)
    plans = {}
    with Session(engine) as session:
        recorder = LastStatement(session.connection())
        for name, page_cursor in (("page 1", None), (f"page {scenarios.DEEP_PAGE:,}", cursor)):
            query = PaymentListQuery(
                limit=scenarios.LIST_PAGE, status=scenarios.LIST_STATUS, cursor=page_cursor
            )
            list_payments(session, merchant_id, query)
            text, sorted_rows = explain(session, recorder)
            plans[f"payments list, status={scenarios.LIST_STATUS}, {name}"] = (
                text + f"\n(rows sorted: {sorted_rows})"
            )
        session.rollback()
    engine.dispose()
    return plans


def measure_page(bench, server, scenario_id, label, path, headers, target_ms) -> None:
    """One GET at 16 connections and at 1 (the page's own time, without queueing)."""
    status, _body = get(server.port, path, headers)
    if status != 200:
        row = Row(scenario_id, label, 0, target=f"p99<{target_ms}", met=False)
        row.note = f"GET {path} answered HTTP {status}, not 200: not measured"
        bench.rows.append(row)
        bench.say(f"{scenario_id} {label}: {row.note}")
        return
    bench.warm(server, Workload([Request("GET", path)], headers, bench.connections))
    for connections in (bench.connections, 1):
        workload = Workload([Request("GET", path)], headers, connections)
        result = bench.load(server, workload)
        row = Row(scenario_id, label, connections, result, rss_mib=server.rss_mib())
        row.target = f"p99<{target_ms}"
        row.met = result.requests > 0 and result.p99_ms < target_ms and result.errors == 0
        if result.requests == 0:
            row.note = f"no response within the {bench.seconds:g} s of load (wrk times out at 10 s)"
        bench.rows.append(row)
        bench.say(
            f"{scenario_id} {label} c{connections}: {result.rps:,.0f}/s p99 {result.p99_ms:.1f} ms"
        )
    if bench.profile:
        bench.profile_pass(server, scenario_id, Workload([Request("GET", path)], headers, 4))


def volume_phase(bench, server) -> None:
    url = ensure_volume(bench, server)
    env = scenarios.production_environ(url)
    settings = scenarios.app_settings(env)
    engine = sa.create_engine(url)
    password = secrets.token_urlsafe(18)
    tenant = scenarios.sign_in_big_merchant(engine, settings, password)
    cursor = scenarios.deep_cursor(engine, tenant.merchant_id)
    engine.dispose()
    if bench.wants("4"):
        bench.explain.update(explain_list(url, tenant.merchant_id, cursor))
    app = start_server("payportal", env, bench.log_dir)
    try:
        if bench.wants("4"):
            headers = scenarios.bearer(tenant.jwt)
            first = {"status": scenarios.LIST_STATUS, "limit": scenarios.LIST_PAGE}
            pages = (
                ("4a", "list page 1", first),
                ("4b", f"list page {scenarios.DEEP_PAGE:,}", {**first, "cursor": cursor}),
            )
            for scenario_id, label, params in pages:
                path = f"/api/v1/payments?{urlencode(params)}"
                measure_page(bench, app, scenario_id, label, path, headers, 30)
        if bench.wants("7"):
            cookie = scenarios.dashboard_cookie(app.port, scenarios.BIG_MERCHANT_EMAIL, password)
            headers = {"Cookie": cookie}
            for scenario_id, label, path in (
                ("7a", "dashboard overview", "/dashboard/home"),
                ("7b", "dashboard payments", "/dashboard/payments"),
            ):
                measure_page(bench, app, scenario_id, label, path, headers, 100)
    finally:
        app.stop()
