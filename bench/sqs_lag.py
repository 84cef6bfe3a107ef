"""Commit -> SQS lag of the in-process publisher, against moto's SQS server over real HTTP.

    .venv/bin/python bench/sqs_lag.py [--payments 2000] [--rate 50] [--merchants 20]
                                      [--concurrency 16] [--relays 0] [--standard]

Initializes N payments for M merchants through the app (production.ini, served by waitress in
this process, so the after-commit hook can be timed; the clients run in a process of their own,
and so does moto's server, so neither shares the app's interpreter) at --rate payments/s (open
loop; 0 = as fast as the clients go), drains the queue as a consumer would, and prints the HTTP
figures, the events/s published, the publisher's SendMessageBatch calls (entries per call), the
CPU of the app and of moto, and the lag from each transaction's commit (stamped when its
after-commit hook runs) to SQS's SentTimestamp of the message: p50/p95/p99/max. It first times
bare SendMessageBatch calls, so the emulator's own ceiling is on the page; the deepest the queue
got is printed too, since moto's FIFO queue costs O(messages in the queue) per message sent or
received (it recounts them for each message), so a consumer falling behind slows every send.
PostgreSQL is BENCH_DATABASE_URL's server or the embedded one `make bench` uses. --relays N runs
N `payportal-relay production.ini` beside the app, as a deployment does (they send what the
publisher has not yet). --standard uses a standard queue instead of a FIFO one.

--stub-sqs MS replaces moto by a stand-in that accepts every SendMessageBatch and answers after MS
milliseconds (real SQS answers in 10-30 ms), noting when each message arrived; no consumer is
needed. moto's cost per message grows with its queue's depth, so past a few dozen messages a
second on a shared 2-core machine its figure is moto's; the stub's is payportal's own: the
request's commit, the hand-off, the claim, the send and the wait for the answer.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import http.client
import http.server
import json
import logging
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import boto3
import database
import scenarios
import sqlalchemy as sa
from cpu import process_cpu
from loadgen import percentile
from servers import free_port, start_relays, stop_relays

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
    return process, wait_for_port(process, port)


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


def serve_stub(port: int, latency_ms: float) -> None:
    """--serve-stub: a stand-in for SQS's JSON protocol that accepts every SendMessageBatch,
    notes each message's arrival by event id (GET / hands them back) and answers after
    `latency_ms`. Not an emulator: nothing is queued, nothing can be received."""
    arrived: dict[str, float] = {}
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as boto3 expects

        def _answer(self, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            with lock:
                self._answer(dict(arrived))

        def do_POST(self):
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            now = time.time()
            answer: dict = {}
            if self.headers.get("X-Amz-Target", "").endswith(".SendMessageBatch"):
                entries = request["Entries"]
                with lock:
                    for entry in entries:
                        arrived[json.loads(entry["MessageBody"])["id"]] = now
                answer = {
                    "Successful": [
                        {
                            "Id": entry["Id"],
                            "MessageId": entry["Id"],
                            "MD5OfMessageBody": hashlib.md5(  # noqa: S324 -- SQS's checksum
                                entry["MessageBody"].encode()
                            ).hexdigest(),
                        }
                        for entry in entries
                    ],
                    "Failed": [],
                }
            time.sleep(latency_ms / 1000)
            self._answer(answer)

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer((HOST, port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def start_stub(latency_ms: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-stub", str(port), "--stub-sqs", str(latency_ms)]
    )
    return process, wait_for_port(process, port)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(10)


def wait_for_port(process: subprocess.Popen, port: int) -> str:
    # whatever fails later, the server does not outlive this process
    atexit.register(_stop, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return f"http://{HOST}:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the SQS server did not start")


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


def build_app(environ: dict[str, str], commit_times: dict[str, float], batches: list[int]):
    """The production app with the publisher on; its hand-off notes when each commit happened,
    its SQS client the size of each SendMessageBatch."""
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
    publisher.sender.client().meta.events.register(
        "provide-client-params.sqs.SendMessageBatch",
        lambda params, **_: batches.append(len(params["Entries"])),
    )
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


def _load_process(port, tokens, total, rate, concurrency, results) -> None:
    results.put(initialize_payments(port, tokens, total, rate, concurrency))


def initialize_in_another_process(port, tokens, total, rate, concurrency):
    """initialize_payments from a fresh interpreter (spawned: this one runs threads), so the
    clients' own CPU does not take the app's interpreter lock from its request threads."""
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    process = spawn.Process(
        target=_load_process, args=(port, tokens, total, rate, concurrency, results)
    )
    process.start()
    try:
        return results.get()
    finally:
        process.join()


def watch_depth(endpoint: str, queue_url: str, stop: threading.Event, depths: list[int]) -> None:
    """The queue's depth (visible + in flight) once a second: what moto's costs grow with."""
    sqs = sqs_client(endpoint)
    while not stop.wait(1.0):
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        depths.append(sum(int(value) for value in attributes.values()))


def receive_until_stopped(sqs, queue_url: str, stop, received, record) -> None:
    """Receive and delete batches until `stop` is set, counting them in `received` (a shared
    Value) and handing each message to `record`."""
    while not stop.is_set():
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["SentTimestamp"],
        ).get("Messages", [])
        for message in messages:
            record(message)
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


def consume(endpoint: str, queue_url: str, stop, received, results) -> None:
    """A consumer process (so it keeps up without sharing the app's interpreter): receive and
    delete, then hand back each event's SentTimestamp (seconds)."""
    os.environ.update(AWS)
    sent: dict[str, float] = {}

    def record(message) -> None:
        event_id = json.loads(message["Body"])["id"]
        sent[event_id] = int(message["Attributes"]["SentTimestamp"]) / 1000

    receive_until_stopped(sqs_client(endpoint), queue_url, stop, received, record)
    results.put(sent)


def run(
    total: int,
    rate: float,
    merchants: int,
    concurrency: int,
    relays: int,
    fifo: bool,
    stub_ms: float | None = None,
) -> None:
    from waitress.server import create_server

    logging.basicConfig(level=logging.WARNING)
    server = database.start_postgres()
    url = database.recreate_database(server, BENCH_DB)
    os.environ.update(AWS)
    kind = "FIFO" if fifo else "standard"
    if stub_ms is None:
        moto, endpoint = start_moto()
        probe_ms = probe_emulator(endpoint, fifo)
        queue_url = create_queue(sqs_client(endpoint), "payportal-lag", fifo)
        emulator = (
            f"moto {kind} queue: {probe_ms:.0f} ms per SendMessageBatch of 10 "
            f"(p50 of {PROBE_CALLS})"
        )
    else:
        moto, endpoint = start_stub(stub_ms)
        queue_url = f"{endpoint}/000000000000/payportal-lag{'.fifo' if fifo else ''}"
        emulator = f"stub {kind} queue answering after {stub_ms:g} ms (not moto)"
    environ = {
        **scenarios.production_environ(url),
        **AWS,
        "SQS_QUEUE_URL": queue_url,
        "AWS_ENDPOINT_URL": endpoint,
        "PAYPORTAL_PUBLISHER_ENABLED": "true",
    }
    commit_times: dict[str, float] = {}
    batches: list[int] = []
    app = build_app(environ, commit_times, batches)
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
        for _ in range(CONSUMERS if stub_ms is None else 0)
    ]
    for consumer in consumers:
        consumer.start()
    relay_processes = start_relays(relays, environ, scenarios.PRODUCTION_INI)
    sent: dict[str, float] = {}
    depths: list[int] = []
    stop_watching = threading.Event()
    watcher = threading.Thread(
        target=watch_depth, args=(endpoint, queue_url, stop_watching, depths)
    )
    if stub_ms is None:
        watcher.start()
    try:
        began = time.perf_counter()
        app_cpu, moto_cpu = time.process_time(), process_cpu(moto.pid)
        latencies, errors = initialize_in_another_process(
            web.effective_port, tokens, total, rate, concurrency
        )
        http_seconds = time.perf_counter() - began
        deadline = time.monotonic() + DRAIN_TIMEOUT
        if stub_ms is None:
            while received.value < total - errors and time.monotonic() < deadline:
                time.sleep(0.1)
        else:
            app.registry.event_publisher.wait_idle(DRAIN_TIMEOUT)
        drained_seconds = time.perf_counter() - began
        app_cpu = time.process_time() - app_cpu
        moto_cpu = process_cpu(moto.pid) - moto_cpu
    finally:
        stop_watching.set()
        if watcher.is_alive():
            watcher.join()
        stop.set()
        for _consumer in consumers:
            sent.update(results.get(timeout=60))
        if stub_ms is not None:
            with urllib.request.urlopen(endpoint + "/") as answer:  # noqa: S310 -- 127.0.0.1
                sent.update(json.loads(answer.read()))
        for consumer in consumers:
            consumer.join()
        stop_relays(relay_processes)
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
    pace = f"at {rate:g}/s" if rate else "closed loop"
    server_name = "moto" if stub_ms is None else "stub"
    lines = [
        f"emulator                 {emulator}",
        f"payments initialized     {len(latencies):,} ({errors} errors) for {merchants} "
        f"merchants, {pace}, {concurrency} clients, {relays} relays",
        f"HTTP                     {len(latencies) / http_seconds:,.0f} req/s, p50 "
        f"{percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms",
        f"events on SQS            {len(sent):,} of {total - errors:,}; {unsent} left unsent",
        f"published                {len(sent) / window:,.0f} events/s (first commit to last send)",
        f"SendMessageBatch         {len(batches):,} calls from the publisher, "
        f"{sum(batches) / max(1, len(batches)):.1f} entries per call",
        f"CPU                      app {app_cpu * 1000 / max(1, len(latencies)):.1f} ms per "
        f"payment (this process, publisher included); {server_name} "
        f"{moto_cpu / drained_seconds:.0%} of a core; queue depth max "
        f"{max(depths, default=0):,}",
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
    parser.add_argument(
        "--stub-sqs",
        type=float,
        metavar="MS",
        help="a stand-in answering every SendMessageBatch after MS ms instead of moto",
    )
    parser.add_argument("--serve-stub", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stub:
        serve_stub(args.serve_stub, args.stub_sqs or 0.0)
        return
    run(
        args.payments,
        args.rate,
        args.merchants,
        args.concurrency,
        args.relays,
        fifo=not args.standard,
        stub_ms=args.stub_sqs,
    )


if __name__ == "__main__":
    main()
