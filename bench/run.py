"""`make bench`: payportal under load beside the floor app and pgbench, in one run, one table.

    make bench                          every scenario, ~15 s of load each
    make bench SCENARIOS=1,3 QUICK=1    some scenarios, a few seconds each
    make bench PROFILE=1                also py-spy profiles of scenarios 1, 3, 4, 5 and 7

Environment: SCENARIOS (1-7), QUICK=1, DURATION (seconds per load), WARMUP (seconds of unmeasured
load per workload on each fresh server, default 2), PROFILE=1, CONNECTIONS,
QUIET_WAIT (seconds each load may wait for other processes to leave the cores idle),
BENCH_DATABASE_URL (a PostgreSQL server to use instead of the embedded one), BENCH_LOADER=python
(the Python load generator even where wrk is installed). Results: bench/results/<time>.json.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import traceback
import uuid
from pathlib import Path

import database
import scenarios
import sqlalchemy as sa
import sqs
import volume
from cpu import CpuMeter, wait_for_quiet
from loadgen import Request, Workload, run_load, wrk_available
from report import Row, render, write_json
from servers import start_profile, start_relays, start_server, stop_relays
from stacks import summarize

RESULTS = Path(__file__).resolve().parent / "results"
RUN_DB = "payportal_bench_run"
ALL = ("1", "2", "3", "4", "5", "6", "7")


class Bench:
    """One run: its settings, the rows measured so far, and where its files go."""

    def __init__(self) -> None:
        self.quick = os.environ.get("QUICK") == "1"
        self.seconds = float(os.environ.get("DURATION") or (3 if self.quick else 15))
        # unmeasured load first: each fresh worker opens its pool, compiles its statements,
        # fills its caches and lets psycopg prepare, as a server that has been up a while has
        self.warmup = float(os.environ.get("WARMUP") or 2)
        self.pgbench_seconds = 3 if self.quick else 10
        self.connections = int(os.environ.get("CONNECTIONS") or 16)
        self.profile = os.environ.get("PROFILE") == "1"
        # on a shared machine: wait up to this many seconds for the others to go quiet first
        self.quiet_wait = float(os.environ.get("QUIET_WAIT") or 0)
        wanted = os.environ.get("SCENARIOS") or ",".join(ALL)
        self.selected = {s.strip() for s in wanted.split(",") if s.strip()}
        unknown = self.selected - set(ALL)
        if unknown:
            raise SystemExit(f"bench: unknown scenario(s) {sorted(unknown)}; choose from 1-7")
        self.stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.tag = "b" + self.stamp.replace("-", "")
        self.log_dir = RESULTS / f"{self.stamp}-logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.rows: list[Row] = []
        self.explain: dict[str, str] = {}
        self.sections: dict[str, str] = {}  # other probes' own reports, printed after the table
        self.profiles: dict[str, str] = {}
        self.pgbench: dict[str, dict] = {}
        self.postmaster_pid: int | None = None
        self.database: database.PostgresServer | None = None
        self.checkpoints = True

    def wants(self, *scenario_ids: str) -> bool:
        return any(s in self.selected for s in scenario_ids)

    def warm(self, server, *workloads: Workload) -> None:
        for n, workload in enumerate(workloads):
            if self.warmup > 0:
                run_load(server.port, workload, self.warmup, f"{self.tag}w{n}x")

    def settle(self) -> None:
        """Before a measured load: a checkpoint (PostgresServer.checkpoint)."""
        if self.database is not None and self.checkpoints:
            self.checkpoints = self.database.checkpoint()
            if not self.checkpoints:
                self.say("CHECKPOINT refused: checkpoints may fall inside measured loads")

    def load(self, server, workload: Workload, seconds: float | None = None, *, wait=True):
        """Load the server from another process; with the CPU it and PostgreSQL spent."""
        self.settle()
        if self.quiet_wait and wait:
            wait_for_quiet(self.quiet_wait)
        meter = CpuMeter(server.pid, self.postmaster_pid)
        result = run_load(server.port, workload, seconds or self.seconds, self.tag)
        use = meter.stop()
        result.server_cpu_ms, result.db_cpu_ms = use.per_request_ms(result.requests)
        result.others_share = use.others_share
        return result

    def say(self, text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)

    def profile_pass(self, server, scenario_id: str, workload: Workload) -> None:
        """Load again while py-spy samples the server (not in the table: sampling costs CPU)."""
        output = RESULTS / f"{self.stamp}-profile-{scenario_id}.txt"
        if self.quiet_wait:
            wait_for_quiet(self.quiet_wait)
        recorder = start_profile(server, self.seconds, output)
        if recorder is None:
            self.say("py-spy not installed (pip install py-spy): no profile")
            return
        time.sleep(0.5)
        self.load(server, workload, wait=False)
        _out, errors = recorder.communicate(timeout=self.seconds + 60)
        if recorder.returncode != 0 or not output.exists():
            self.say(f"py-spy failed: {errors.decode()[-300:]}")
            return
        summary = summarize(output, 25)
        self.profiles[scenario_id] = summary
        (output.with_suffix(".summary.txt")).write_text(summary + "\n")
        print(summary, flush=True)


def pgbench_phase(bench: Bench, url: str, tenant, event_data: str) -> dict[str, float]:
    """PostgreSQL's own rate for the same writes and reads, 16 clients, on the same database."""
    engine = sa.create_engine(url)
    pending = scenarios.seed_pending(engine, tenant.merchant_id, "pgbench", 50_000)
    engine.dispose()
    clients = 16
    variables = {
        "merchant_id": str(tenant.merchant_id),
        "actor": f"merchant:{tenant.merchant_id}",
        "event_data": event_data,
        "pending": len(pending),
        "readable": 10_000,
        "gateway_actor": "gateway:paystack",
        "webhook_source": "webhook:paystack",
        # webhook.sql: client c's k-th delivery is for pending payment c + 1 + k * clients
        "clients": clients,
        "step": 0,
    }
    rates = {}
    for script in ("payment_outbox", "initialize", "webhook", "get_payment"):
        if script == "get_payment" and not bench.wants("3"):
            continue
        if script == "webhook" and not bench.wants("5"):
            continue
        bench.settle()
        if bench.quiet_wait:
            wait_for_quiet(bench.quiet_wait)
        result = database.run_pgbench(
            url, script, clients=clients, seconds=bench.pgbench_seconds, variables=variables
        )
        bench.pgbench[script] = result.as_dict()
        rates[script] = result.tps
        bench.say(f"pgbench {script}: {result.tps:,.0f} tps, {result.latency_ms:.2f} ms average")
    return rates


def floor_phase(bench: Bench, env: dict[str, str], url: str) -> dict[str, float]:
    """The floor app's POST /pay and GET /pay/{ref}, same server model, same database."""
    scenarios.create_floor_table(env)
    engine = sa.create_engine(url)
    references = scenarios.seed_floor(engine, 10_000)
    engine.dispose()
    server = start_server("floor", env, bench.log_dir)
    rates = {}
    try:
        workload = scenarios.floor_post_workload(uuid.uuid4())
        workload.connections = bench.connections
        get_load = Workload(
            [Request("GET", f"/pay/{r}") for r in references],
            connections=bench.connections,
        )
        bench.warm(server, workload, get_load)
        post = bench.load(server, workload)
        rates["POST /pay"] = post.rps
        get = bench.load(server, get_load)
        rates["GET /pay/{ref}"] = get.rps
        for name, result in (("POST /pay", post), ("GET /pay/{ref}", get)):
            bench.rows.append(
                Row("floor", name, bench.connections, result, rss_mib=server.rss_mib())
            )
            bench.say(f"floor {name}: {result.rps:,.0f}/s p99 {result.p99_ms:.1f} ms")
    finally:
        server.stop()
    return rates


def count_created(url: str, merchant_id, since: dt.datetime) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        created = conn.scalar(
            sa.text("SELECT count(*) FROM payments WHERE merchant_id = :m AND created_at >= :t"),
            {"m": merchant_id, "t": since},
        )
    engine.dispose()
    return created


def webhook_outcomes(url: str, references: list[str]) -> dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT coalesce(outcome, 'none'), count(*) FROM gateway_webhooks "
                "WHERE reference = ANY(:refs) GROUP BY 1"
            ),
            {"refs": references},
        ).all()
    engine.dispose()
    return dict(rows)


def payportal_phase(bench, env, url, tenant, readable, floor, pg) -> None:
    """Scenarios 1, 2, 3 and 5 against one payportal process on the run database, with a
    payportal-relay beside it as in a deployment (it folds the dashboard rollup's deltas the
    writes leave, on the same machine and database)."""
    settings = scenarios.app_settings(env)
    server = start_server("payportal", env, bench.log_dir)
    relays = start_relays(1, env, scenarios.PRODUCTION_INI)
    engine = sa.create_engine(url)
    try:
        warm = [scenarios.initialize_workload(c) for c in (tenant.jwt, tenant.api_key)]
        warm.append(scenarios.get_workload(readable, tenant.jwt))
        warm_refs = scenarios.seed_pending(
            engine, tenant.merchant_id, "warmwh", 10_000, gateway="paystack"
        )
        warm.append(scenarios.webhook_workload(warm_refs, settings.paystack_secret_key, 1))
        for workload in warm:
            workload.connections = bench.connections
        bench.warm(server, *warm)
        first_rate = None
        for scenario_id, label, credential in (
            ("1", "initialize (JWT)", tenant.jwt),
            ("2", "initialize (API key)", tenant.api_key),
        ):
            if not bench.wants(scenario_id):
                continue
            workload = scenarios.initialize_workload(credential)
            workload.connections = bench.connections
            since = dt.datetime.now(dt.UTC)
            result = bench.load(server, workload)
            committed = count_created(url, tenant.merchant_id, since)
            row = Row(scenario_id, label, bench.connections, result)
            row.floor = ("POST /pay", floor["POST /pay"]) if floor else None
            row.pgbench = ("payment_outbox", pg["payment_outbox"]) if pg else None
            row.note = (
                f"{committed:,} payments committed for {result.requests:,} requests; "
                f"initialize writes in pgbench: {pg.get('initialize', 0):,.0f} tps"
            )
            if scenario_id == "1":
                first_rate = result.rps
                row.target = "≥15% pgbench, ≥70% floor, p99<50"
                row.met = (
                    result.errors == 0
                    and result.rps >= 0.15 * pg["payment_outbox"]
                    and result.rps >= 0.70 * floor["POST /pay"]
                    and result.p99_ms < 50
                )
            else:
                row.target = "within 10% of (1)"
                row.met = (
                    result.errors == 0 and first_rate is not None and result.rps >= 0.9 * first_rate
                )
            row.rss_mib = server.rss_mib()
            bench.rows.append(row)
            bench.say(f"{scenario_id} {label}: {result.rps:,.0f}/s p99 {result.p99_ms:.1f} ms")
        if bench.wants("3"):
            workload = scenarios.get_workload(readable, tenant.jwt)
            workload.connections = bench.connections
            result = bench.load(server, workload)
            row = Row("3", "GET payment", bench.connections, result, rss_mib=server.rss_mib())
            row.floor = ("GET /pay/{ref}", floor["GET /pay/{ref}"]) if floor else None
            row.pgbench = ("get_payment", pg["get_payment"]) if pg else None
            row.target = "≥1,200/s, p99<30"
            row.met = result.errors == 0 and result.rps >= 1200 and result.p99_ms < 30
            bench.rows.append(row)
            bench.say(f"3 GET payment: {result.rps:,.0f}/s p99 {result.p99_ms:.1f} ms")
        webhook_batch = 0

        def webhook_workload():
            nonlocal webhook_batch
            webhook_batch += 1
            count = max(10_000, int(bench.seconds * 2500))
            refs = scenarios.seed_pending(
                engine, tenant.merchant_id, f"wh{webhook_batch}x", count, gateway="paystack"
            )
            workload = scenarios.webhook_workload(
                refs, settings.paystack_secret_key, webhook_batch * 10_000_000
            )
            workload.connections = bench.connections
            return refs, workload

        if bench.wants("5"):
            refs, workload = webhook_workload()
            result = bench.load(server, workload)
            outcomes = webhook_outcomes(url, refs)
            applied = outcomes.get("processed", 0)
            row = Row("5", "Paystack webhooks", bench.connections, result)
            row.rate = applied / result.seconds
            row.rss_mib = server.rss_mib()
            row.floor = ("POST /pay", floor["POST /pay"]) if floor else None
            row.pgbench = ("webhook", pg["webhook"]) if pg else None
            row.target = "≥500 applied/s, p99<50"
            row.met = result.errors == 0 and row.rate >= 500 and result.p99_ms < 50
            row.note = f"outcomes: {outcomes} ({result.requests:,} requests)"
            bench.rows.append(row)
            bench.say(f"5 webhooks: {row.rate:,.0f} applied/s p99 {result.p99_ms:.1f} ms")
        if bench.profile:
            for scenario_id in ("1", "3", "5"):
                if not bench.wants(scenario_id):
                    continue
                if scenario_id == "1":
                    workload = scenarios.initialize_workload(tenant.jwt)
                elif scenario_id == "3":
                    workload = scenarios.get_workload(readable, tenant.jwt)
                else:
                    workload = webhook_workload()[1]
                workload.connections = bench.connections
                bench.say(f"profiling scenario {scenario_id} with py-spy")
                bench.profile_pass(server, scenario_id, workload)
    finally:
        engine.dispose()
        stop_relays(relays)
        server.stop()


def api_phase(bench: Bench, server) -> None:
    """Scenarios 1, 2, 3 and 5 with pgbench and the floor app, on a fresh database."""
    url = database.recreate_database(server, RUN_DB)
    env = scenarios.production_environ(url)
    settings = scenarios.app_settings(env)
    engine = sa.create_engine(url)
    tenant = scenarios.create_tenant(engine, settings, "bench-api@example.com", with_key=True)
    pg_tenant = scenarios.create_tenant(
        engine, settings, "bench-pgbench@example.com", with_key=False
    )
    readable = scenarios.seed_pending(engine, tenant.merchant_id, "readable", 10_000)
    scenarios.seed_pending(engine, pg_tenant.merchant_id, "pgread", 10_000)
    engine.dispose()
    event_data = scenarios.sample_event_data(readable[0])
    pg = pgbench_phase(bench, url, pg_tenant, event_data)
    floor = floor_phase(bench, env, url)
    payportal_phase(bench, env, url, tenant, readable, floor, pg)


def run_phase(bench: Bench, name: str, phase, server) -> None:
    """A phase that fails becomes a failed row; the run goes on with the next one."""
    try:
        phase(bench, server)
    except Exception as exc:
        traceback.print_exc()
        row = Row("!", f"{name} failed", 0, target="runs", met=False)
        row.note = f"{type(exc).__name__}: {exc}"[:300]
        bench.rows.append(row)
        bench.say(f"{name} failed: {row.note}")


def git_version() -> str:
    """The commit measured, '-dirty' when the working tree differs from it."""
    result = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
        cwd=RESULTS.parent,
    )
    return result.stdout.strip() or "unknown"


def main() -> int:
    bench = Bench()
    loader = "wrk"
    if not wrk_available():
        why = "BENCH_LOADER=python" if os.environ.get("BENCH_LOADER") else "wrk not installed"
        loader = f"python load generator ({why})"
    bench.say(f"scenarios {','.join(sorted(bench.selected))}, {bench.seconds:g} s each, {loader}")
    server = database.start_postgres()
    bench.say(f"database: {server.describe()}")
    bench.postmaster_pid = server.postmaster_pid
    bench.database = server
    phases = (
        (("1", "2", "3", "5"), "API writes and reads", api_phase),
        (("4", "7"), "1,000,000 payments", volume.volume_phase),
        (("6",), "SQS lag", sqs.sqs_phase),
    )
    try:
        for wanted, name, phase in phases:
            if bench.wants(*wanted):
                run_phase(bench, name, phase, server)
    finally:
        server.stop()
    print()
    print(render(bench.rows))
    for name, text in bench.explain.items():
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) {name}:\n  " + text.replace("\n", "\n  "))
    for name, text in bench.sections.items():
        print(f"\n{name}:\n  " + text.replace("\n", "\n  "))
    path = RESULTS / f"{bench.stamp}.json"
    meta = {
        "started": bench.stamp,
        "code": git_version(),
        "quick": bench.quick,
        "seconds_per_load": bench.seconds,
        "connections": bench.connections,
        "loader": loader,
        "database": server.describe(),
        "server_model": "production.ini's [server:main]: payportal.server's waitress runner "
        "with its workers and threads (BENCH_SERVER_WORKERS / BENCH_SERVER_THREADS override)",
        "warmup_seconds": bench.warmup,
    }
    write_json(
        path,
        meta,
        bench.rows,
        {
            "pgbench": bench.pgbench,
            "explain": bench.explain,
            "profiles": bench.profiles,
            "sections": bench.sections,
        },
    )
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
