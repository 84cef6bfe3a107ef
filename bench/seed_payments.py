"""Seed a scratch database with 1,000,000 payments across 1,000 merchants, in SQL.

    .venv/bin/python bench/seed_payments.py payportal_bench
    .venv/bin/python bench/seed_payments.py payportal_bench --server postgresql+psycopg://...

Creates the database on the server (default: SERVER_URL, else the local 127.0.0.1:5432), runs
the migrations, then fills it with generate_series: one large merchant holding 40 % of all
payments (so a list can go 10,000 pages deep) and 999 others sharing the rest, over the past
year, with the status, gateway and currency mix of a live platform. Refuses a database that
already has payments: it is meant for scratch databases only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from payportal.db import load_all_models
from payportal.payments.models import Payment

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BIG_MERCHANT_EMAIL = "bench-merchant-1@example.com"

MERCHANTS_SQL = """
INSERT INTO merchants (name, email, password_hash, merchant_type, status, created_by)
SELECT 'Bench merchant ' || m, 'bench-merchant-' || m || '@example.com',
       '!bench-account-cannot-sign-in', 'business', 'active', 'bench'
FROM generate_series(1, :merchants) AS m
"""

# merchant 1 takes `big` payments, the others the rest round-robin; statuses 60 % completed,
# 12 % pending, 10 % failed, 6 % partially refunded, 4 % refunded, 4 % cancelled, 4 % expired
PAYMENTS_SQL = """
WITH m AS (
    SELECT id, substring(email FROM '^bench-merchant-([0-9]+)@')::int AS n
    FROM merchants WHERE created_by = 'bench'
), s AS (
    SELECT i,
           CASE WHEN i <= :big THEN 1 ELSE 2 + (i % (:merchants - 1)) END AS n,
           now() - (i % 31536000) * interval '1 second' - (i % 997) * interval '1 microsecond'
               AS created_at,
           CASE WHEN i % 50 < 30 THEN 'completed'
                WHEN i % 50 < 36 THEN 'pending'
                WHEN i % 50 < 41 THEN 'failed'
                WHEN i % 50 < 44 THEN 'partially_refunded'
                WHEN i % 50 < 46 THEN 'refunded'
                WHEN i % 50 < 48 THEN 'cancelled'
                ELSE 'expired' END AS status,
           500 + (i::bigint * 7919) % 250000 AS amount
    FROM generate_series(1, :payments) AS i
)
INSERT INTO payments (
    id, reference, merchant_id, amount, currency, status, gateway, customer_email,
    amount_refunded, platform_fee, net_amount, expires_at, completed_at, created_at,
    updated_at, version, created_by
)
SELECT gen_random_uuid(),
       'pay_' || replace(gen_random_uuid()::text, '-', ''),
       m.id,
       s.amount,
       (ARRAY['USD', 'USD', 'USD', 'EUR', 'GBP', 'NGN', 'KES', 'JPY'])[1 + s.i % 8],
       s.status::payment_status,
       (ARRAY['internal', 'stripe', 'stripe', 'paystack', 'flutterwave', 'paypal'])[1 + s.i % 6]
           ::payment_gateway,
       'customer' || (s.i % 20000) || '@example.com',
       CASE s.status WHEN 'refunded' THEN s.amount
                     WHEN 'partially_refunded' THEN s.amount / 2 ELSE 0 END,
       CASE WHEN s.status IN ('completed', 'partially_refunded', 'refunded')
            THEN round(s.amount * 0.029) + 30 ELSE 0 END,
       CASE WHEN s.status IN ('completed', 'partially_refunded', 'refunded')
            THEN s.amount - round(s.amount * 0.029) - 30
                 - CASE s.status WHEN 'refunded' THEN s.amount
                                 WHEN 'partially_refunded' THEN s.amount / 2 ELSE 0 END
       END,
       s.created_at + interval '30 minutes',
       CASE WHEN s.status IN ('completed', 'partially_refunded', 'refunded')
            THEN s.created_at + interval '1 minute' END,
       s.created_at,
       s.created_at,
       2,
       'bench'
FROM s JOIN m USING (n)
"""


def database_url(server: str, name: str) -> str:
    return sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database", help="name of the scratch database to create and fill")
    parser.add_argument("--server", default=os.environ.get("SERVER_URL", DEFAULT_SERVER))
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=1_000)
    parser.add_argument(
        "--big-share", type=float, default=0.4, help="share of payments of the large merchant"
    )
    args = parser.parse_args(argv)
    if args.merchants < 2 or args.payments < args.merchants:
        parser.error("need at least 2 merchants and one payment per merchant")

    admin = sa.create_engine(args.server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": args.database}
        )
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{args.database}"'))
    admin.dispose()
    url = database_url(args.server, args.database)
    config = Config(str(ROOT / "development.ini"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")

    load_all_models()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if conn.scalar(sa.text("SELECT EXISTS (SELECT 1 FROM payments)")):
            print(f"{args.database} already has payments; seed a fresh database", file=sys.stderr)
            return 1
        started = time.perf_counter()
        conn.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
        # Checking each row's foreign keys and growing the indexes row by row is most of the
        # cost of a bulk load: drop them, load, then rebuild them from the models' own
        # definitions (the foreign keys are validated again, in one pass, when re-added).
        table = Payment.__table__
        constraints = [
            c
            for c in table.constraints
            if isinstance(c, sa.ForeignKeyConstraint | sa.UniqueConstraint)
        ]
        indexes = list(table.indexes)
        for index in indexes:
            index.drop(conn)
        for constraint in constraints:
            conn.execute(sa.schema.DropConstraint(constraint))
        conn.execute(sa.text(MERCHANTS_SQL), {"merchants": args.merchants})
        conn.execute(
            sa.text(PAYMENTS_SQL),
            {
                "payments": args.payments,
                "merchants": args.merchants,
                "big": int(args.payments * args.big_share),
            },
        )
        for constraint in constraints:
            conn.execute(sa.schema.AddConstraint(constraint))
        for index in indexes:
            index.create(conn)
        # the rollup triggers left a delta per payment: into the totals, as the relay would
        conn.execute(sa.text("SELECT payment_totals_fold(NULL)"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE merchants"))
        conn.execute(sa.text("VACUUM ANALYZE payments"))
        # the fold leaves a dead delta row per seeded payment: the overview's query reads
        # around them until a vacuum (38 ms instead of ~4 right after a seed)
        conn.execute(sa.text("VACUUM ANALYZE payment_total_deltas"))
        conn.execute(sa.text("VACUUM ANALYZE payment_hourly_totals"))
        conn.execute(sa.text("VACUUM ANALYZE payment_daily_totals"))
        total = conn.scalar(sa.text("SELECT count(*) FROM payments"))
    elapsed = time.perf_counter() - started
    print(
        f"seeded {total:,} payments across {args.merchants:,} merchants in {elapsed:.1f} s "
        f"into {args.database} (largest merchant: {BIG_MERCHANT_EMAIL})"
    )
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
