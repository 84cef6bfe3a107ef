"""Time the payments list query the API runs, at page 1 and 10,000 pages deep, and EXPLAIN it.

    .venv/bin/python bench/list_queries.py payportal_bench [--runs 200] [--status completed]

Runs against a database filled by bench/seed_payments.py. It calls the API's own list service
(payportal.payments.services.list_payments: the filters, the keyset cursor, the ORM), for the
seed's largest merchant: it walks 10,000 pages by cursor timing every page, then repeats page 1
and page 10,000 `--runs` times each, through the service and as the bare SQL it sent, and prints
p50/p99, then EXPLAIN (ANALYZE, BUFFERS) of that SQL. Exits 1 when the database's p99 is over the
budget (20 ms), when a plan sorts where an index gives the order, or when a prefix search sorts
more than SORT_LIMIT matches.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import sqlalchemy as sa
from sqlalchemy.orm import Session

from payportal.db import load_all_models
from payportal.merchants.models import Merchant
from payportal.payments.schemas import PaymentListQuery
from payportal.payments.services import list_payments

DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BIG_MERCHANT_EMAIL = "bench-merchant-1@example.com"
BUDGET_MS = 20.0
DEPTH = 10_000
SORT_LIMIT = 10_000


class LastStatement:
    """Remembers the last SQL statement and parameters sent on the connection."""

    def __init__(self, connection):
        self.statement = None
        self.parameters = None
        sa.event.listen(connection, "before_cursor_execute", self._record)

    def _record(self, _conn, _cursor, statement, parameters, _context, _many):
        self.statement, self.parameters = statement, parameters


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def timed_page(session, merchant_id, filters: dict, cursor: str | None):
    query = PaymentListQuery(limit=20, cursor=cursor, **filters)
    started = time.perf_counter()
    rows, has_more, next_cursor = list_payments(session, merchant_id, query)
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, rows, has_more, next_cursor


def timed_sql(session, recorder: LastStatement, runs: int) -> list[float]:
    """The recorded statement alone, straight through the driver: the database's share."""
    cursor = session.connection().connection.driver_connection.cursor()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        cursor.execute(recorder.statement, recorder.parameters)
        cursor.fetchall()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def report(label: str, samples: list[float]) -> float:
    p99 = percentile(samples, 99)
    print(
        f"  {label:<44} n={len(samples):>5}  p50={percentile(samples, 50):6.2f} ms  "
        f"p99={p99:6.2f} ms  max={max(samples):6.2f} ms"
    )
    return p99


def _largest_sort_input(node: dict) -> int:
    """Rows fed into the largest Sort of a JSON plan (0: the plan never sorts)."""
    largest = 0
    children = node.get("Plans", [])
    if node["Node Type"] == "Sort":
        largest = sum(child["Actual Rows"] * child["Actual Loops"] for child in children)
    for child in children:
        largest = max(largest, _largest_sort_input(child))
    return largest


def explain(session, recorder: LastStatement) -> tuple[str, int]:
    """EXPLAIN (ANALYZE, BUFFERS) of the recorded statement: (plan text, rows it sorted)."""
    cursor = session.connection().connection.driver_connection.cursor()
    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + recorder.statement, recorder.parameters)
    text = "\n".join(row[0] for row in cursor.fetchall())
    cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + recorder.statement, recorder.parameters)
    plan = cursor.fetchone()[0][0]["Plan"]
    return text, _largest_sort_input(plan)


def measure(session, recorder, merchant_id, label: str, filters: dict, runs: int):
    """Walk up to DEPTH pages, then repeat page 1 and page DEPTH.

    Returns (worst SQL-only p99, rows the plans sorted). The service timings (ORM included)
    are printed alongside for reference; the budget is the database's.
    """
    print(f"\n{label}: {filters or 'no filter'}")
    walk, cursor, deep_cursor = [], None, None
    for page in range(1, DEPTH + 1):
        elapsed, _rows, has_more, next_cursor = timed_page(session, merchant_id, filters, cursor)
        walk.append(elapsed)
        if page == DEPTH - 1:
            deep_cursor = next_cursor  # the cursor that asks for page DEPTH
        if not has_more:
            break
        cursor = next_cursor
    report(f"service: walk pages 1..{len(walk):,} by keyset", walk)
    worst, plans = 0.0, []
    depths = [("page 1", None)]
    if deep_cursor is not None:
        depths.append((f"page {DEPTH:,}", deep_cursor))
    for name, page_cursor in depths:
        samples = [timed_page(session, merchant_id, filters, page_cursor)[0] for _ in range(runs)]
        report(f"service: {name}, repeated", samples)
        worst = max(
            worst, report(f"SQL only: {name}, repeated", timed_sql(session, recorder, runs))
        )
        plans.append((name, *explain(session, recorder)))
    for name, text, _sorted in plans:
        print(f"\n  EXPLAIN (ANALYZE, BUFFERS), {name}:\n    " + text.replace("\n", "\n    "))
    return worst, max(rows for _name, _text, rows in plans)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database", help="a database filled by bench/seed_payments.py")
    parser.add_argument("--server", default=os.environ.get("SERVER_URL", DEFAULT_SERVER))
    parser.add_argument("--runs", type=int, default=200, help="repeats of page 1 and the deep page")
    parser.add_argument("--status", default="completed", help="the status filter to time")
    args = parser.parse_args(argv)
    url = sa.engine.make_url(args.server).set(database=args.database)
    load_all_models()
    engine = sa.create_engine(url)
    with Session(engine) as session:
        merchant_id = session.scalar(
            sa.select(Merchant.id).where(Merchant.email == BIG_MERCHANT_EMAIL)
        )
        if merchant_id is None:
            print(f"{args.database} has no bench data: run bench/seed_payments.py", file=sys.stderr)
            return 1
        reference = session.scalar(
            sa.text("SELECT reference FROM payments WHERE merchant_id = :m LIMIT 1"),
            {"m": merchant_id},
        )
        recorder = LastStatement(session.connection())
        total = session.scalar(sa.text("SELECT count(*) FROM payments"))
        mine = session.scalar(
            sa.text("SELECT count(*) FROM payments WHERE merchant_id = :m"), {"m": merchant_id}
        )
        print(f"{total:,} payments; the largest merchant has {mine:,}; budget p99 < {BUDGET_MS} ms")
        # (label, filters, an index yields the order: the plan must not sort at all)
        cases = [
            ("status filter", {"status": args.status}, True),
            ("no filter", {}, True),
            ("status and gateway", {"status": args.status, "gateway": "stripe"}, True),
            ("customer email", {"customer_email": "customer42@example.com"}, False),
            ("q: customer email prefix", {"q": "customer4213"}, False),
            ("q: broader email prefix", {"q": "customer199"}, False),
            ("q: reference prefix", {"q": reference[:12]}, False),
        ]
        results = [
            (*measure(session, recorder, merchant_id, label, filters, args.runs), ordered)
            for label, filters, ordered in cases
        ]
        session.rollback()
    engine.dispose()
    worst = max(p99 for p99, _rows, _ordered in results)
    # where an index gives the order nothing may be sorted; a search sorts its matches
    # (never the merchant's whole set: that is what SORT_LIMIT guards)
    sorted_ordered = max(rows for _p99, rows, ordered in results if ordered)
    sorted_matches = max(rows for _p99, rows, ordered in results if not ordered)
    passed = worst < BUDGET_MS and sorted_ordered == 0 and sorted_matches <= SORT_LIMIT
    print(
        f"\n{'PASS' if passed else 'FAIL'}: worst SQL p99 {worst:.2f} ms (budget {BUDGET_MS} ms); "
        f"rows sorted where an index orders: {sorted_ordered}; "
        f"largest sort of prefix matches: {sorted_matches} (limit {SORT_LIMIT:,})"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
