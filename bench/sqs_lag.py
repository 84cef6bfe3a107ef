"""Commit -> SQS lag of the in-process publisher, against moto's SQS server over real HTTP.

    .venv/bin/python bench/sqs_lag.py [--payments 2000] [--rate 50] [--merchants 20]
                                      [--concurrency 16] [--relays 0] [--standard]

Initializes N payments for M merchants through the app (production.ini, served by waitress in
this process, so the after-commit hook can be timed; moto's server runs in a process of its own,
so the emulator does not share our interpreter) at --rate payments/s (open loop; 0 = as fast as
the clients go), drains the queue as a consumer would, and prints the HTTP figures, the events/s
published, and the lag from each transaction's commit (stamped when its after-commit hook runs)
to SQS's SentTimestamp of the message: p50/p95/p99/max. It first times bare SendMessageBatch
calls, so the emulator's own ceiling is on the page. PostgreSQL is BENCH_DATABASE_URL's server or
the embedded one `make bench` uses. --relays N runs N `payportal-relay production.ini` beside the
app, as a deployment does (they send what the publisher has not yet). --standard uses a standard
queue instead of a FIFO one.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time

import boto3
import database
import scenarios
import sqlalchemy as sa
from loadgen import percentile
from servers import free_port

HOST = "127.0.0.1"
BENCH_DB = "payportal_bench_sqs_lag"
AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}
CONSUMERS = 2
DRAIN_TIMEOUT = 120
PROBE_CALLS = 30


def start_moto() -> tuple[subprocess.Popen, str]:
    """moto's server (`python -m moto.server`), once it accepts connections."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return process, f"http://{HOST}:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("moto's server did not start")


def sqs_client(endpoint: str):
    return boto3.session.Session().client(
        "sqs", region_name=AWS["AWS_REGION"], endpoint_url=endpoint
    )


def create_queue(sqs, name: str, fifo: bool) -> str:
    if fifo:
        return sqs.create_queue(QueueName=f"{name}.fifo", Attributes={"FifoQueue": "true"})[
            "QueueUrl"
        ]
    return sqs.create_queue(QueueName=name)["QueueUrl"]


def probe_emulator(endpoint: str, fifo: bool) -> float:
    """Milliseconds per bare SendMessageBatch of ten ~1 KB messages, each into an empty queue."""
    sqs = sqs_client(endpoint)
    timings = []
    for call in range(PROBE_CALLS):
        queue_url = create_queue(sqs, f"payportal-probe-{call}", fifo)
        entries = [{"Id": str(i), "MessageBody": "x" * 1000} for i in range(10)]
        if fifo:
            for i, entry in enumerate(entries):
                entry.update(MessageGroupId=f"g{i % 4}", MessageDeduplicationId=f"{call}-{i}")
        began = time.perf_counter()
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        timings.append((time.perf_counter() - began) * 1000)
        sqs.delete_queue(QueueUrl=queue_url)
    return percentile(timings, 50)


def build_app(environ: dict[str, str], commit_times: dict[str, float]):
    """The production app with the publisher on; its hand-off notes when each commit happened."""
    from pyramid.paster import get_appsettings

    from payportal import main

    os.environ.update(environ)
    app = main({}, **get_appsettings(str(scenarios.PRODUCTION_INI), name="main"))
    publisher = app.registry.event_publisher
    hand_over = publisher.after_commit

    def stamped_after_commit(committed, events):
        now = time.time()
        for _merchant_id, event_id in events:
            commit_times[str(event_id)] = now
        hand_over(committed, events)

    publisher.after_commit = stamped_after_commit
    return app


def initialize_payments(port: int, tokens: list[str], total: int, rate: float, concurrency: int):
    """POST initialize `total` times (merchants in turn) from `concurrency` keep-alive
    connections: request n leaves at start + n / rate whatever the answers before it (rate 0:
    each client as fast as it can)."""
    body = json.dumps({"amount": 1050, "currency": "USD", "description": "lag probe"})
    counter = iter(range(total))
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    start = time.perf_counter() + 0.2

    def client() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            if rate:
                time.sleep(max(0.0, start + index / rate - time.perf_counter()))
            headers = {
                **scenarios.bearer(tokens[index % len(tokens)]),
                "Content-Type": "application/json",
            }
            began = time.perf_counter()
            conn.request("POST", "/api/v1/payments/initialize", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            with lock:
                latencies.append((time.perf_counter() - began) * 1000)
                errors[0] += response.status != 201
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0]


def consume(endpoint: str, queue_url: str, stop, received, results) -> None:
    """A consumer process (so it keeps up without sharing the app's interpreter): receive and
    delete, then hand back each event's SentTimestamp (seconds)."""
    os.environ.update(AWS)
    sqs = sqs_client(endpoint)
    sent: dict[str, float] = {}
    while not stop.is_set():
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["SentTimestamp"],
        ).get("Messages", [])
        for message in messages:
            event_id = json.loads(message["Body"])["id"]
            sent[event_id] = int(message["Attributes"]["SentTimestamp"]) / 1000
        if messages:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
            with received.get_lock():
                received.value += len(messages)
    results.put(sent)


def start_relays(count: int, environ: dict[str, str]) -> list[subprocess.Popen]:
    relay = os.path.join(os.path.dirname(sys.executable), "payportal-relay")
    return [
        subprocess.Popen(
            [relay, str(scenarios.PRODUCTION_INI)],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def run(total: int, rate: float, merchants: int, concurrency: int, relays: int, fifo: bool) -> None:
    from waitress.server import create_server

    logging.basicConfig(level=logging.WARNING)
    server = database.start_postgres()
    url = database.recreate_database(server, BENCH_DB)
    os.environ.update(AWS)
    moto, endpoint = start_moto()
    probe_ms = probe_emulator(endpoint, fifo)
    queue_url = create_queue(sqs_client(endpoint), "payportal-lag", fifo)
    environ = {
        **scenarios.production_environ(url),
        **AWS,
        "SQS_QUEUE_URL": queue_url,
        "AWS_ENDPOINT_URL": endpoint,
        "PAYPORTAL_PUBLISHER_ENABLED": "true",
    }
    commit_times: dict[str, float] = {}
    app = build_app(environ, commit_times)
    engine = sa.create_engine(url)
    settings = app.registry.payportal_settings
    tokens = [
        scenarios.create_tenant(engine, settings, f"bench-lag-{n}@example.com", with_key=False).jwt
        for n in range(merchants)
    ]
    # waitress warns whenever a request waits for a thread; the clients keep it saturated
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    web = create_server(app, host=HOST, port=0, threads=concurrency)
    threading.Thread(target=web.run, daemon=True).start()

    stop, received, results = (
        multiprocessing.Event(),
        multiprocessing.Value("i", 0),
        multiprocessing.Queue(),
    )
    consumers = [
        multiprocessing.Process(target=consume, args=(endpoint, queue_url, stop, received, results))
        for _ in range(CONSUMERS)
    ]
    for consumer in consumers:
        consumer.start()
    relay_processes = start_relays(relays, environ)
    sent: dict[str, float] = {}
    try:
        began = time.perf_counter()
        latencies, errors = initialize_payments(
            web.effective_port, tokens, total, rate, concurrency
        )
        http_seconds = time.perf_counter() - began
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while received.value < total - errors and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for _consumer in consumers:
            sent.update(results.get(timeout=60))
        for consumer in consumers:
            consumer.join()
        for relay in relay_processes:
            relay.terminate()  # it finishes the batch in hand first
        for relay in relay_processes:
            try:
                relay.wait(120)
            except subprocess.TimeoutExpired:
                relay.kill()
                relay.wait()
        web.close()
        app.registry.event_publisher.close()
        moto.terminate()
        moto.wait(10)
    with engine.connect() as conn:
        unsent = conn.scalar(
            sa.text("SELECT count(*) FROM outbox_events WHERE published_at IS NULL")
        )
    engine.dispose()
    app.registry.dbengine.dispose()
    server.stop()

    lags = [(sent[e] - commit_times[e]) * 1000 for e in sent if e in commit_times]
    window = max(sent.values()) - min(commit_times.values()) if sent else 0.0
    kind = "FIFO" if fifo else "standard"
    pace = f"at {rate:g}/s" if rate else "closed loop"
    lines = [
        f"emulator                 moto {kind} queue: {probe_ms:.0f} ms per SendMessageBatch "
        f"of 10 (p50 of {PROBE_CALLS})",
        f"payments initialized     {len(latencies):,} ({errors} errors) for {merchants} "
        f"merchants, {pace}, {concurrency} clients, {relays} relays",
        f"HTTP                     {len(latencies) / http_seconds:,.0f} req/s, p50 "
        f"{percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms",
        f"events on SQS            {len(sent):,} of {total - errors:,}; {unsent} left unsent",
        f"published                {len(sent) / window:,.0f} events/s (first commit to last send)",
        f"commit -> SQS lag        p50 {percentile(lags, 50):.0f} ms, p95 "
        f"{percentile(lags, 95):.0f} ms, p99 {percentile(lags, 99):.0f} ms, "
        f"max {max(lags, default=0):.0f} ms",
    ]
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=50, help="payments/s; 0 = closed loop")
    parser.add_argument("--merchants", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--relays", type=int, default=0, help="payportal-relay processes beside")
    parser.add_argument("--standard", action="store_true", help="a standard queue, not FIFO")
    args = parser.parse_args()
    run(
        args.payments,
        args.rate,
        args.merchants,
        args.concurrency,
        args.relays,
        fifo=not args.standard,
    )


if __name__ == "__main__":
    main()
