"""Scenario 6: SQS down for the middle third of the initializations a waitress process serves →
every request still 201 and fast; after recovery the relay delivers every event, 0 lost."""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from sqlalchemy.orm import Session

from payportal.events.models import OutboxEvent
from tests.processes import free_port, write_ini
from tests.reliability.conftest import sized
from tests.reliability.servers import AWS_ENV, BIN, ROOT, child_env, start_server

CLIENTS = 4


def percentile(results, fraction: float) -> float:
    durations = sorted(elapsed for _, elapsed, _ in results)
    return durations[max(0, round(len(durations) * fraction) - 1)]


def run_relay_until_drained(ini, unsent, deadline_seconds: float = 120) -> int:
    """`payportal-relay <ini> --once` until the outbox has nothing unsent; returns the runs."""
    deadline = time.monotonic() + deadline_seconds
    runs = 0
    while unsent() and time.monotonic() < deadline:
        runs += 1
        subprocess.run(
            [str(BIN / "payportal-relay"), str(ini), "--once"],
            cwd=ROOT,
            env=child_env(**AWS_ENV),
            check=True,
            capture_output=True,
            timeout=60,
        )
        if unsent():
            # events the publisher failed are due again after their backoff (about a second)
            time.sleep(0.5)
    return runs


def test_sqs_down_for_the_middle_third_every_initialization_is_201_and_every_event_arrives(
    tmp_path, database_url, committed_db, committed_merchant, sqs_server, stress
):
    total = sized(stress, 300, 1000)
    queue_url = sqs_server.fifo_queue()
    port = free_port()
    ini = write_ini(
        tmp_path / "sqs-outage.ini",
        database_url,
        port,
        **{
            "payportal.publisher_enabled": "true",
            "payportal.sqs_queue_url": queue_url,
            "payportal.aws_endpoint_url": sqs_server.url,
        },
    )
    server = start_server(ini, port, **AWS_ENV)
    drainer = sqs_server.drain(queue_url)
    # a first request loads what a fresh process loads lazily; the figures are about SQS
    assert (
        server.request("GET", "/api/v1/payments", headers=committed_merchant.headers).status == 200
    )

    def unsent() -> int:
        with Session(committed_db) as session:
            return session.scalar(
                sa.select(sa.func.count()).where(OutboxEvent.published_at.is_(None))
            )

    def initialize(n: int) -> tuple[int, float, str | None]:
        body = json.dumps({"amount": 1000 + n, "currency": "USD"}).encode()
        started = time.perf_counter()
        response = server.request(
            "POST",
            "/api/v1/payments/initialize",
            body,
            {**committed_merchant.headers, "Content-Type": "application/json"},
        )
        elapsed = time.perf_counter() - started
        reference = response.json["payment"]["reference"] if response.status == 201 else None
        return response.status, elapsed, reference

    thirds = [range(0, total // 3), range(total // 3, 2 * total // 3), range(2 * total // 3, total)]
    up_before, down, up_after = [], [], []
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            up_before += pool.map(initialize, thirds[0])
            sqs_server.stop()
            try:
                down += pool.map(initialize, thirds[1])
                unsent_in_outage = unsent()
            finally:
                sqs_server.start()
            up_after += pool.map(initialize, thirds[2])
    finally:
        server.stop()

    results = up_before + down + up_after
    statuses = [status for status, _, _ in results]
    references = {reference for _, _, reference in results}
    assert statuses == [201] * total
    assert len(references) == total
    # the middle third's events were refused by the dead queue and kept in the outbox
    assert unsent_in_outage >= len(thirds[1])
    p99 = percentile(results, 0.99)
    p99_down = percentile(down, 0.99)
    assert p99 < 1.0, f"p99 {p99 * 1000:.0f} ms"

    relay_runs = run_relay_until_drained(ini, unsent)
    assert unsent() == 0

    messages = drainer.finish(expect=total)
    with Session(committed_db) as session:
        event_ids = set(
            map(
                str,
                session.scalars(
                    sa.select(OutboxEvent.id).where(OutboxEvent.type == "payment.initiated")
                ),
            )
        )
    bodies = [json.loads(m["Body"]) for m in messages]
    received_ids = {body["id"] for body in bodies}
    assert len(event_ids) == total
    assert received_ids == event_ids  # 0 lost
    assert {m["Attributes"]["MessageDeduplicationId"] for m in messages} == event_ids
    assert {body["data"]["reference"] for body in bodies} == references
    print(
        f"\nSQS outage: {total} initializations, {statuses.count(201)} x 201, "
        f"p50 {percentile(results, 0.5) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
        f"(SQS down: p99 {p99_down * 1000:.0f} ms), max {percentile(results, 1) * 1000:.0f} ms; "
        f"{unsent_in_outage} unsent during the outage; relay runs {relay_runs}; "
        f"{len(messages)} messages received, {len(received_ids)} distinct event ids, "
        f"{len(event_ids - received_ids)} lost"
    )
