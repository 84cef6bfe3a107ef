"""CPU per request of the money paths, in process: the quick loop for optimizing.

    python bench/inproc.py                       every path, 600 requests each
    python bench/inproc.py initialize get -n 2000
    python bench/inproc.py webhook --profile     cProfile (CPU time) of one path
    python bench/inproc.py floor_post floor_get  the floor app (../shared/bench), same database

Not the benchmark (that is `make bench`, over HTTP, with the floor and pgbench beside it): this
calls production.ini's WSGI app directly, one request at a time, and reports the process CPU
per request (time.process_time) and wall time, so a change's effect shows within seconds and
without the noise of a loaded machine. The database is INPROC_DATABASE_URL's server (default
the local PostgreSQL on 127.0.0.1:5432), in a scratch database (INPROC_DATABASE, default
payportal_inproc) dropped and migrated each run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import database
import scenarios
import sqlalchemy as sa
from webob import Request

SERVER = os.environ.get(
    "INPROC_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DB = os.environ.get("INPROC_DATABASE", "payportal_inproc")
PATHS = (
    "initialize",
    "initialize_key",
    "get",
    "list",
    "webhook",
    "overview",
    "payments_page",
    "floor_post",
    "floor_get",
)
PAGES = {"overview": "/dashboard/home", "payments_page": "/dashboard/payments"}
PASSWORD = "inproc-dashboard-password"  # noqa: S105 (a scratch database's bench merchant)


def dashboard_cookie(app) -> str:
    """Sign in through the login form, in process; the Cookie header of the session."""
    from webtest import TestApp

    # production cookies are Secure: the browser speaks https
    browser = TestApp(app, extra_environ={"HTTP_HOST": "localhost", "wsgi.url_scheme": "https"})
    form = browser.get("/dashboard/login").forms[0]
    form["email"] = "inproc@example.com"
    form["password"] = PASSWORD
    form.submit(status=303)
    return "; ".join(f"{name}={value}" for name, value in browser.cookies.items())


def floor_app(url: str):
    """../shared/bench/floor_app.py on the same database (DATABASE_URL), its table created."""
    import importlib.util

    os.environ["DATABASE_URL"] = url

    spec = importlib.util.spec_from_file_location("floor_app", scenarios.FLOOR_APP)
    module = importlib.util.module_from_spec(spec)
    sys.modules["floor_app"] = module
    spec.loader.exec_module(module)
    module.metadata.create_all(module.application.engine)
    return module.application


def build(url: str):
    env = scenarios.production_environ(url)
    os.environ.update(env)
    from pyramid.paster import get_app, setup_logging

    setup_logging(str(scenarios.PRODUCTION_INI))
    # production's JSON access lines are part of the cost: keep them, but not on the terminal
    log_file = open(Path(tempfile.gettempdir()) / "payportal-inproc.log", "w")  # noqa: SIM115
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(log_file)
    app = get_app(str(scenarios.PRODUCTION_INI), "main")
    return app, scenarios.app_settings(env)


def requests_for(path: str, tenant, engine, settings, count: int, batch: str, cookie=None):
    import json

    if path in ("initialize", "initialize_key"):
        credential = tenant.jwt if path == "initialize" else tenant.api_key
        for n in range(count):
            body = json.dumps(
                {
                    "amount": 1000 + n,
                    "currency": "USD",
                    "customer_email": f"customer{n}@example.com",
                    "description": f"Order {n}",
                }
            ).encode()
            yield Request.blank(
                "/api/v1/payments/initialize",
                method="POST",
                body=body,
                headers={
                    "Authorization": f"Bearer {credential}",
                    "Content-Type": "application/json",
                },
            )
    elif path == "get":
        refs = scenarios.seed_pending(engine, tenant.merchant_id, "get" + batch, min(count, 10_000))
        for n in range(count):
            yield Request.blank(
                f"/api/v1/payments/{refs[n % len(refs)]}",
                headers={"Authorization": f"Bearer {tenant.jwt}"},
            )
    elif path == "list":
        scenarios.seed_pending(engine, tenant.merchant_id, "list" + batch, 200)
        for _n in range(count):
            yield Request.blank(
                "/api/v1/payments?status=pending&limit=20",
                headers={"Authorization": f"Bearer {tenant.jwt}"},
            )
    elif path in PAGES:
        if batch == "w":
            # payments in every status the overview's bars and the list's badges show
            for status in ("pending", "completed", "failed"):
                refs = scenarios.seed_pending(engine, tenant.merchant_id, path[:2] + status, 300)
                with engine.begin() as conn:
                    conn.execute(
                        sa.text(
                            "UPDATE payments SET status = CAST(:s AS payment_status) "
                            "WHERE reference = ANY(:r)"
                        ),
                        {"s": status, "r": refs},
                    )
        for _n in range(count):
            yield Request.blank(PAGES[path], headers={"Cookie": cookie})
    elif path == "floor_post":
        for n in range(count):
            body = json.dumps(
                {
                    "reference": f"flr_{batch}_{n}",
                    "merchant_id": str(tenant.merchant_id),
                    "amount": 1050,
                    "currency": "USD",
                }
            ).encode()
            yield Request.blank(
                "/pay", method="POST", body=body, headers={"Content-Type": "application/json"}
            )
    elif path == "floor_get":
        if batch == "w":
            scenarios.seed_floor(engine, 100)
        for n in range(count):
            yield Request.blank(f"/pay/flr_seed_{(n % 100) + 1}")
    elif path == "webhook":
        import hashlib
        import hmac

        refs = scenarios.seed_pending(
            engine, tenant.merchant_id, "wh" + batch, count, gateway="paystack"
        )
        # event ids of their own per batch: the warm-up's ids again would be duplicates,
        # answered 200 without completing anything
        first = 0 if batch == "w" else 1_000_000
        for n, ref in enumerate(refs, start=first):
            body = scenarios.paystack_body(ref, n)
            sig = hmac.new(settings.paystack_secret_key.encode(), body, hashlib.sha512).hexdigest()
            yield Request.blank(
                "/api/v1/webhooks/paystack",
                method="POST",
                body=body,
                headers={"x-paystack-signature": sig, "Content-Type": "application/json"},
            )


def run(app, requests, profile: bool):
    walls, statuses = [], {}
    profiler = cProfile.Profile(time.process_time) if profile else None  # CPU, not waits
    cpu0 = time.process_time()
    for req in requests:
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        response = req.get_response(app)
        if profiler:
            profiler.disable()
        walls.append(time.perf_counter() - t0)
        statuses[response.status_int] = statuses.get(response.status_int, 0) + 1
    cpu = time.process_time() - cpu0
    return cpu, walls, statuses, profiler


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("paths", nargs="*", default=list(PATHS))
    parser.add_argument("-n", type=int, default=600)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=45)
    args = parser.parse_args()
    server = database.PostgresServer(SERVER)
    url = database.recreate_database(server, DB)
    app, settings = build(url)
    engine = sa.create_engine(url)
    tenant = scenarios.create_tenant(
        engine, settings, "inproc@example.com", with_key=True, password=PASSWORD
    )
    cookie = dashboard_cookie(app) if any(path in PAGES for path in args.paths) else None
    floor = None
    print(f"{'path':16} {'n':>6} {'cpu ms/req':>11} {'wall p50':>9} {'wall p99':>9}  statuses")
    for path in args.paths:
        target = app
        if path.startswith("floor"):
            floor = floor or floor_app(url)
            target = floor
        warm = list(requests_for(path, tenant, engine, settings, 100, "w", cookie))
        run(target, warm, False)
        reqs = list(requests_for(path, tenant, engine, settings, args.n, "m", cookie))
        cpu, walls, statuses, profiler = run(target, reqs, args.profile)
        walls.sort()
        p50 = statistics.median(walls) * 1000
        p99 = walls[int(len(walls) * 0.99) - 1] * 1000
        print(
            f"{path:16} {len(reqs):6} {cpu * 1000 / len(reqs):11.3f} {p50:9.2f} {p99:9.2f}",
            statuses,
        )
        if profiler:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("cumulative").print_stats(args.top)
            print(out.getvalue())
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(args.top)
            print(out.getvalue())
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
