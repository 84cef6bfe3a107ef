"""Old code against new in the same minutes: two servers on one database, loaded in turn.

    .venv/bin/python bench/ab.py OLD_REV [--rounds 4] [--seconds 4] [--connections 16]
                                 [--page overview] [--page payments] [--page list] [--page get]
                                 [--old-env NAME=VALUE ...] [--new-env NAME=VALUE ...]

The machine's speed here drifts by 2x within an hour, so two `make bench` runs compare only
through their ratios; this compares two commits directly. OLD_REV is checked out into a git
worktree (bench/results/ab-<rev>) and served beside the working tree, both with production.ini's
server model, on the volume database of scenarios 4 and 7 (1,000,000 payments, seeded once).
Each page is loaded on both servers in interleaved rounds (old first in even rounds, new first in
odd ones) with the bench's load generator, and the medians are printed. The pages are those of
the volume merchant: the dashboard's overview and payments page (signed in through the form),
the API's list page 1 (status filter) and a GET of one of its payments (JWT). `initialize`
(JWT, a new payment per request) runs on a second pair of servers over a scratch database
(payportal_bench_ab, made afresh), so nothing is written into the seeded one.

--old-env / --new-env add environment variables to one server: with OLD_REV HEAD they compare
settings instead of code, e.g. `HEAD --new-env BENCH_SERVER_THREADS=8` (serve.py's overrides
of production.ini's workers and threads).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import database
import scenarios
import servers
import sqlalchemy as sa
import volume
from loadgen import Request, Workload, run_load

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PAGES = ("overview", "payments", "list", "get", "initialize")
SCRATCH_DB = "payportal_bench_ab"


class Say:
    def say(self, message: str) -> None:
        print(message, flush=True)


def worktree(rev: str) -> Path:
    """OLD_REV checked out beside the results (reused when already there)."""
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", rev],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    path = BENCH_DIR / "results" / f"ab-{sha}"
    if not path.exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), sha],
            check=True,
            capture_output=True,
        )
    return path


def page_workloads(url: str, port: int, settings, connections: int, wanted) -> dict:
    """The volume merchant's read pages."""
    engine = sa.create_engine(url)
    password = secrets.token_urlsafe(18)
    tenant = scenarios.sign_in_big_merchant(engine, settings, password)
    with engine.connect() as conn:
        reference = conn.scalar(
            sa.text("SELECT reference FROM payments WHERE merchant_id = :m LIMIT 1"),
            {"m": tenant.merchant_id},
        )
    engine.dispose()
    cookie = {"Cookie": scenarios.dashboard_cookie(port, scenarios.BIG_MERCHANT_EMAIL, password)}
    token = scenarios.bearer(tenant.jwt)
    query = urlencode({"status": scenarios.LIST_STATUS, "limit": scenarios.LIST_PAGE})
    every = {
        "overview": ("/dashboard/home", cookie),
        "payments": ("/dashboard/payments", cookie),
        "list": (f"/api/v1/payments?{query}", token),
        "get": (f"/api/v1/payments/{reference}", token),
    }
    return {
        page: Workload([Request("GET", path)], headers, connections)
        for page, (path, headers) in every.items()
        if page in wanted
    }


def initialize_workloads(url: str, _port: int, settings, connections: int, _wanted) -> dict:
    engine = sa.create_engine(url)
    tenant = scenarios.create_tenant(engine, settings, "ab@example.com", with_key=False)
    engine.dispose()
    workload = scenarios.initialize_workload(tenant.jwt)
    workload.connections = connections
    return {"initialize": workload}


def compare(args, old_root: Path, url: str, make_loads, results: dict) -> list[str]:
    """Serve `url` from both codes, load each page in interleaved rounds; the pages' names."""
    env = scenarios.production_environ(url)
    settings = scenarios.app_settings(env)
    log_dir = BENCH_DIR / "results" / "ab-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    new_env = dict(item.split("=", 1) for item in args.new_env)
    old_env = dict(item.split("=", 1) for item in args.old_env)
    new = servers.start_server("payportal", {**env, **new_env}, log_dir)
    servers.BENCH_DIR = old_root / "bench"  # its serve.py, production.ini and templates
    try:
        old = servers.start_server(
            "payportal", {**env, "PYTHONPATH": str(old_root), **old_env}, log_dir
        )
    finally:
        servers.BENCH_DIR = BENCH_DIR
    try:
        loads = make_loads(url, new.port, settings, args.connections, args.page or PAGES)
        for page, workload in loads.items():
            for target in (old, new):
                run_load(target.port, workload, 2, "ab-warm")
            for n in range(args.rounds):
                order = (("old", old), ("new", new)) if n % 2 == 0 else (("new", new), ("old", old))
                for name, target in order:
                    result = run_load(target.port, workload, args.seconds, f"ab-{name}{n}")
                    results.setdefault((page, name), []).append(result)
                    print(
                        f"{page:10} {name} round {n}: {result.rps:,.0f}/s p50 {result.p50_ms:.1f}"
                        f" p99 {result.p99_ms:.1f} ms, {result.errors} errors",
                        flush=True,
                    )
    finally:
        new.stop()
        old.stop()
    return list(loads)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("old")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--page", action="append", choices=PAGES)
    parser.add_argument("--old-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--new-env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    old_root = worktree(args.old)
    wanted = args.page or PAGES
    server = database.start_postgres()
    results: dict[tuple[str, str], list] = {}
    pages: list[str] = []
    try:
        if any(page != "initialize" for page in wanted):
            url = volume.ensure_volume(Say(), server)
            pages += compare(args, old_root, url, page_workloads, results)
        if "initialize" in wanted:
            url = database.recreate_database(server, SCRATCH_DB)
            pages += compare(args, old_root, url, initialize_workloads, results)
    finally:
        server.stop()
    print(f"\nmedians of {args.rounds} rounds, {args.connections} connections, {args.old} → HEAD+")
    for page in pages:
        cells = []
        for name in ("old", "new"):
            runs = results[(page, name)]
            rps = statistics.median(r.rps for r in runs)
            p99 = statistics.median(r.p99_ms for r in runs)
            cells.append(f"{name} {rps:,.0f}/s p99 {p99:.1f} ms")
        print(f"{page:9} " + "  |  ".join(cells))
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
