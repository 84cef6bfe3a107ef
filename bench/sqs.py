"""Scenario 6: commit -> SQS lag with the in-process publisher on, against moto's SQS server.

Payments are initialized at a fixed rate (open loop: request n leaves at start + n / rate,
whatever the answers before it), consumers in processes of their own drain the FIFO queue, and
each message's lag is SQS's SentTimestamp minus the event's created_at (stamped inside the
transaction, so the lag counts the rest of the transaction, the commit, and the publisher's
hand-off and send). moto runs in this process, so its side is on the page too: the
SendMessageBatch calls it answered (entries per call), the CPU this process used, and the deepest
its queue got. The depth matters: moto's FIFO queue recounts every message it holds for each
message sent or received, so its cost per message grows with the depth, and a consumer that
falls behind slows every send after it. Before payportal's load, moto alone gets the same rate
from one producer in full batches of ten, drained by the same consumers: its own ceiling.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import multiprocessing
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import database
import scenarios
import sqlalchemy as sa
from cpu import CpuMeter
from loadgen import HOST, LoadResult, percentile
from report import Row
from servers import free_port, start_server

SQS_DB = "payportal_bench_sqs"
RATE = 200  # payments per second, the figure
# merchants taking turns: a FIFO queue keeps one message group per merchant, and a group is read
# one batch at a time (its next messages wait until the batch in flight is deleted), so one
# merchant alone would measure that serialisation, in moto and in the consumers, not the publisher
MERCHANTS = 20
SENDERS = 16
DRAIN_SECONDS = 30
CONSUMERS = 2
# moto accepts any credentials; these only keep boto3 from looking for real ones
AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}


def paced_initialize(
    port: int, tokens: list[str], rate: int, seconds: float
) -> tuple[list[float], int]:
    """POST initialize at `rate`/s for `seconds` from SENDERS keep-alive connections, the
    merchants (their tokens) in turn."""
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    lock = threading.Lock()
    next_index = [0]
    latencies: list[float] = []
    errors = [0]
    body = json.dumps({"amount": 1050, "currency": "USD", "description": "lag probe"})
    headers = [{**scenarios.bearer(token), "Content-Type": "application/json"} for token in tokens]

    def sender() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        while True:
            with lock:
                index = next_index[0]
                next_index[0] += 1
            if index >= total:
                break
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            began = time.perf_counter()
            try:
                conn.request(
                    "POST",
                    "/api/v1/payments/initialize",
                    body=body,
                    headers=headers[index % len(headers)],
                )
                response = conn.getresponse()
                response.read()
                failed = response.status != 201
            except (OSError, http.client.HTTPException):
                failed = True
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=10)
            with lock:
                latencies.append((time.perf_counter() - began) * 1000)
                errors[0] += failed
        conn.close()

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0]


def paced_in_another_process(
    port: int, tokens: list[str], seconds: float, rate: int = RATE
) -> tuple[list[float], int]:
    """The paced POSTs from their own process, so moto and the consumer here do not slow them."""
    result = subprocess.run(
        [sys.executable, __file__, str(port), str(rate), str(seconds)],
        input=json.dumps(tokens),
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout)
    return report["latencies"], report["errors"]


def drain_lags(endpoint: str, queue_url: str, stop, received, results) -> None:
    """A consumer process: receive and delete until told to stop, then hand back one lag (ms)
    per event (moto may hand a message to two consumers at once). In a process of its own, so
    it keeps up without taking moto's interpreter."""
    from sqs_lag import receive_until_stopped

    lags: dict[str, float] = {}

    def record(message) -> None:
        sent_ms = int(message["Attributes"]["SentTimestamp"])
        event = json.loads(message["Body"])
        created = dt.datetime.fromisoformat(event["created_at"])
        lags[event["id"]] = sent_ms - created.timestamp() * 1000

    receive_until_stopped(sqs_client(endpoint), queue_url, stop, received, record)
    results.put(lags)


def push_paced(endpoint: str, queue_url: str, rate: int, seconds: float) -> None:
    """A producer process for moto alone: `rate` messages/s like payportal's (a ~1.5 KB body,
    five attributes) for `seconds`, in full batches of ten over MERCHANTS groups, each body's
    created_at its planned send time (so the consumers measure its lag the same way)."""
    client = sqs_client(endpoint)
    total = int(rate * seconds)
    start = time.time() + 0.2
    for first in range(0, total, 10):
        delay = start + first / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        entries = []
        for n in range(first, min(total, first + 10)):
            planned = dt.datetime.fromtimestamp(start + n / rate, dt.UTC)
            body = {"id": f"probe-{n}", "created_at": planned.isoformat(), "data": "x" * 1500}
            # the five attributes payportal's messages carry (moto's cost depends on them too)
            attributes = {
                name: {"DataType": "String", "StringValue": f"{name}-{n}"}
                for name in ("eventType", "merchantId", "timestamp", "paymentId", "correlationId")
            }
            entries.append(
                {
                    "Id": str(n - first),
                    "MessageBody": json.dumps(body),
                    "MessageAttributes": attributes,
                    "MessageGroupId": f"probe-{n % MERCHANTS}",
                    "MessageDeduplicationId": f"probe-{n}",
                }
            )
        client.send_message_batch(QueueUrl=queue_url, Entries=entries)


class Consumers:
    """CONSUMERS drain_lags processes on one queue (forked: moto's threads stay here, unused)."""

    def __init__(self, endpoint: str, queue_url: str):
        self.stop, self.received, self._results = (
            multiprocessing.Event(),
            multiprocessing.Value("i", 0),
            multiprocessing.Queue(),
        )
        self._processes = [
            multiprocessing.Process(
                target=drain_lags,
                args=(endpoint, queue_url, self.stop, self.received, self._results),
            )
            for _ in range(CONSUMERS)
        ]
        for process in self._processes:
            process.start()

    def wait_for(self, count: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.received.value < count and time.monotonic() < deadline:
            time.sleep(0.2)

    def finish(self) -> list[float]:
        """Stop them; one lag (ms) per message received."""
        self.stop.set()
        lags: dict[str, float] = {}
        for _process in self._processes:
            lags.update(self._results.get(timeout=60))
        for process in self._processes:
            process.join()
        return list(lags.values())


def moto_alone(bench, endpoint: str, watch) -> str:
    """moto's own ceiling, no payportal: RATE messages/s in full batches of ten from one
    producer process, drained by the same consumers; what it absorbed, and its lag."""
    client = sqs_client(endpoint)
    queue_url = client.create_queue(
        QueueName="payportal-probe.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    consumers = Consumers(endpoint, queue_url)
    total = int(RATE * bench.seconds)
    watch.reset()
    try:
        began = time.perf_counter()
        producer = multiprocessing.Process(
            target=push_paced, args=(endpoint, queue_url, RATE, bench.seconds)
        )
        producer.start()
        producer.join()
        consumers.wait_for(total, DRAIN_SECONDS)
        elapsed = time.perf_counter() - began
    finally:
        lags = consumers.finish()
        client.delete_queue(QueueUrl=queue_url)
    text = (
        f"moto alone (no payportal: {RATE}/s offered in full batches of ten for "
        f"{bench.seconds:g} s): {len(lags):,} of {total:,} messages received, "
        f"{len(lags) / elapsed:,.0f}/s; lag p50 {percentile(lags, 50):,.0f} ms, p99 "
        f"{percentile(lags, 99):,.0f} ms; its queue at most {max(watch.depths):,} deep"
    )
    bench.say(f"6 {text}")
    return text


def warm_up(bench, port: int, tokens: list[str], endpoint: str, queue_url: str) -> None:
    """Unmeasured payments first, at a quarter of the rate, drained from the queue before the
    measured load: as in the other scenarios, each fresh worker opens its pool, compiles its
    statements and makes its SQS client first. A cold start at the full rate is a burst moto
    cannot absorb: each message it takes costs it time in proportion to the messages it holds,
    so a backlog of a few dozen slows every later send and receive until it never drains."""
    if bench.warmup <= 0:
        return
    consumers = Consumers(endpoint, queue_url)
    try:
        latencies, errors = paced_in_another_process(port, tokens, bench.warmup, RATE // 4)
        consumers.wait_for(len(latencies) - errors, DRAIN_SECONDS)
    finally:
        consumers.finish()


def sqs_client(endpoint: str):
    return boto3.session.Session(
        aws_access_key_id=AWS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS["AWS_SECRET_ACCESS_KEY"],
        region_name=AWS["AWS_REGION"],
    ).client("sqs", endpoint_url=endpoint)


class MotoWatch:
    """What moto (in this process) did: SendMessageBatch calls and their entries, counted as
    it answers them, and the depth of its queues (messages held, in flight included), sampled."""

    def __init__(self):
        from moto.sqs.models import SQSBackend, sqs_backends

        self.batches: list[int] = []
        self.depths: list[int] = [0]
        self._backends = sqs_backends
        self._backend_class = SQSBackend
        self._original = SQSBackend.send_message_batch
        batches, original = self.batches, self._original

        def counted(backend, queue_name, entries):
            batches.append(len(entries))
            return original(backend, queue_name, entries)

        SQSBackend.send_message_batch = counted
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def reset(self) -> None:
        self.batches.clear()
        self.depths[:] = [0]

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            depth = 0
            for account in list(self._backends.values()):
                for backend in list(account.values()):
                    depth += sum(len(q._messages) for q in list(backend.queues.values()))
            self.depths.append(depth)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._backend_class.send_message_batch = self._original


def sqs_phase(bench, server) -> None:
    from moto.server import ThreadedMotoServer

    url = database.recreate_database(server, SQS_DB)
    port = free_port()
    # moto's server logs every call it answers; the table is what this run prints
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    moto.start()
    endpoint = f"http://{HOST}:{port}"
    client = sqs_client(endpoint)
    queue_url = client.create_queue(
        QueueName="payportal-bench.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    env = {
        **scenarios.production_environ(url),
        **AWS,
        "SQS_QUEUE_URL": queue_url,
        "AWS_ENDPOINT_URL": endpoint,
        "PAYPORTAL_PUBLISHER_ENABLED": "true",
    }
    settings = scenarios.app_settings(env)
    engine = sa.create_engine(url)
    tokens = [
        scenarios.create_tenant(engine, settings, f"bench-sqs-{n}@example.com", with_key=False).jwt
        for n in range(MERCHANTS)
    ]
    engine.dispose()
    watch = MotoWatch()
    try:
        alone = moto_alone(bench, endpoint, watch)
        app = start_server("payportal", env, bench.log_dir)
        warm_up(bench, app.port, tokens, endpoint, queue_url)
        consumers = Consumers(endpoint, queue_url)
        watch.reset()
        try:
            meter = CpuMeter(app.pid, bench.postmaster_pid)
            moto_cpu = time.process_time()
            began = time.perf_counter()
            latencies, errors = paced_in_another_process(app.port, tokens, bench.seconds)
            elapsed = time.perf_counter() - began
            use = meter.stop()
            consumers.wait_for(len(latencies) - errors, DRAIN_SECONDS)
            moto_cpu = (time.process_time() - moto_cpu) / (time.perf_counter() - began)
            rss = app.rss_mib()
        finally:
            lags = consumers.finish()
            app.stop()
    finally:
        watch.stop()
        moto.stop()
    http_load = LoadResult(
        "python paced",
        len(latencies),
        elapsed,
        errors,
        percentile(latencies, 50),
        percentile(latencies, 90),
        percentile(latencies, 99),
        max(latencies, default=0.0),
    )
    lag_load = LoadResult(
        "sqs lag",
        len(lags),
        elapsed,
        len(latencies) - errors - len(lags),
        percentile(lags, 50),
        percentile(lags, 90),
        percentile(lags, 99),
        max(lags, default=0.0),
    )
    entries_per_call = sum(watch.batches) / max(1, len(watch.batches))
    lag_load.server_cpu_ms, lag_load.db_cpu_ms = use.per_request_ms(len(latencies))
    lag_load.others_share = use.others_share
    row = Row("6", f"commit→SQS lag at {RATE}/s", SENDERS, lag_load, rss_mib=rss)
    row.rate = len(lags) / elapsed
    row.target = "p99 lag<1000"
    row.met = lag_load.errors == 0 and lag_load.p99_ms < 1000 and errors == 0
    row.note = (
        f"{len(lags):,} messages for {len(latencies) - errors:,} payments of {MERCHANTS} "
        f"merchants ('errors': not in SQS "
        f"{DRAIN_SECONDS} s after the load); p50/p99 columns are the lag; the POSTs themselves: "
        f"p50 {http_load.p50_ms:.1f} ms, "
        f"p99 {http_load.p99_ms:.1f} ms, {errors} errors; moto answered "
        f"{len(watch.batches):,} SendMessageBatch calls ({entries_per_call:.1f} entries each), "
        f"used {moto_cpu:.0%} of a core, its queue at most {max(watch.depths):,} deep; {alone}"
    )
    row.extra = {
        "http": http_load.as_dict(),
        "moto": {
            "send_message_batch_calls": len(watch.batches),
            "entries_per_call": entries_per_call,
            "cpu_share": moto_cpu,
            "max_depth": max(watch.depths),
            "alone": alone,
        },
    }
    bench.rows.append(row)
    bench.say(
        f"6 SQS lag: p50 {lag_load.p50_ms:.0f} ms p99 {lag_load.p99_ms:.0f} ms; moto queue at "
        f"most {max(watch.depths):,} deep, {entries_per_call:.1f} entries per call"
    )
    closed_loop_lag(bench)


def closed_loop_lag(bench) -> None:
    """The events slice's own probe, bench/sqs_lag.py: as fast as 16 clients go, with the lag
    stamped at each commit's after-commit hook (its app runs in its own process, in-process)."""
    payments = 500 if bench.quick else 2000
    bench.say(f"6 bench/sqs_lag.py --payments {payments} (closed loop)")
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("sqs_lag.py")), "--payments", str(payments)],
        capture_output=True,
        text=True,
        check=False,
    )
    text = result.stdout.strip() or result.stderr.strip()[-1500:]
    bench.sections[f"bench/sqs_lag.py --payments {payments}"] = text
    print(text, flush=True)


if __name__ == "__main__":
    # the paced load generator: python bench/sqs.py PORT RATE SECONDS, the tokens on stdin
    port_, rate_, seconds_ = sys.argv[1:4]
    latencies_, errors_ = paced_initialize(
        int(port_), json.loads(sys.stdin.read()), int(rate_), float(seconds_)
    )
    print(json.dumps({"latencies": latencies_, "errors": errors_}))
