"""Load from a separate process: wrk with bench/requests.lua when installed, else a bounded Python
load generator (threads, one keep-alive connection each). Both replay one requests file."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

LUA_SCRIPT = Path(__file__).resolve().parent / "requests.lua"
HOST = "127.0.0.1"  # the only address any load here is sent to
WRK_THREADS = 2  # one per core: wrk is event-driven, more threads only steal the server's CPU


@dataclass(frozen=True)
class Request:
    """One line of a requests file: the varying part of a request."""

    method: str
    path: str
    header: tuple[str, str] | None = None
    body: str = ""

    def line(self) -> str:
        name, value = self.header or ("", "")
        for text in (self.path, name, value, self.body):
            if "\t" in text or "\n" in text:
                raise ValueError("requests-file fields may not hold tabs or newlines")
        return "\t".join((self.method, self.path, name, value, self.body))


@dataclass
class Workload:
    """What a scenario sends: requests replayed in turn, and headers common to all of them."""

    requests: list[Request]
    headers: dict[str, str] = field(default_factory=dict)
    connections: int = 16


@dataclass
class LoadResult:
    loader: str
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_ms: float | None = None  # server process CPU per request
    db_cpu_ms: float | None = None  # PostgreSQL CPU per request (embedded server only)
    others_share: float | None = None  # share of the cores other processes used meanwhile

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {**self.__dict__, "rps": round(self.rps, 1)}


def wrk_available() -> bool:
    return shutil.which("wrk") is not None and os.environ.get("BENCH_LOADER") != "python"


def run_load(port: int, workload: Workload, seconds: float, run_tag: str) -> LoadResult:
    """Send the workload to 127.0.0.1:port for `seconds` seconds from another process."""
    with tempfile.NamedTemporaryFile("w", suffix=".requests", delete=False) as handle:
        handle.write("\n".join(r.line() for r in workload.requests) + "\n")
        requests_file = handle.name
    try:
        if wrk_available():
            return _run_wrk(port, workload, seconds, requests_file, run_tag)
        return _run_python(port, workload, seconds, requests_file, run_tag)
    finally:
        os.unlink(requests_file)


def _run_wrk(port, workload, seconds, requests_file, run_tag) -> LoadResult:
    threads = min(WRK_THREADS, workload.connections)
    headers = [
        arg for name, value in workload.headers.items() for arg in ("-H", f"{name}: {value}")
    ]
    env = {
        **os.environ,
        "BENCH_REQUESTS": requests_file,
        "BENCH_THREADS": str(threads),
        "BENCH_SEQ_PREFIX": run_tag,
    }
    result = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{workload.connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA_SCRIPT),
            *headers,
            f"http://{HOST}:{port}",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    report = next(
        (line for line in result.stdout.splitlines() if line.startswith("BENCH_JSON ")), None
    )
    if report is None:
        raise RuntimeError(f"wrk failed: {result.stdout[-500:]} {result.stderr[-500:]}")
    data = json.loads(report.removeprefix("BENCH_JSON "))
    errors = sum(
        data[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return LoadResult(
        loader="wrk",
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
    )


def _run_python(port, workload, seconds, requests_file, run_tag) -> LoadResult:
    command = [
        os.environ.get("BENCH_PYTHON", "python3"),
        str(Path(__file__).resolve()),
        requests_file,
        str(port),
        str(workload.connections),
        str(seconds),
        run_tag,
        json.dumps(workload.headers),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"python load generator failed: {result.stderr[-800:]}")
    return LoadResult(**json.loads(result.stdout))


def percentile(samples: list[float], pct: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def python_load(
    requests: list[Request],
    port: int,
    connections: int,
    seconds: float,
    run_tag: str,
    headers: dict[str, str],
) -> LoadResult:
    """Each thread keeps one connection alive and sends its share of lines until the deadline."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    start = threading.Barrier(connections + 1)
    deadline = [0.0]

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        position, sequence = index, 0
        start.wait()
        while time.perf_counter() < deadline[0]:
            item = requests[position % len(requests)]
            position += connections
            sequence += 1
            body = item.body.replace("{seq}", f"{run_tag}{index}x{sequence}").encode() or None
            sent_headers = dict(headers)
            if item.header:
                sent_headers[item.header[0]] = item.header[1]
            began = time.perf_counter()
            try:
                conn.request(item.method, item.path, body=body, headers=sent_headers)
                response = conn.getresponse()
                response.read()
                if response.status >= 400:
                    errors[index] += 1
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=10)
            latencies[index].append((time.perf_counter() - began) * 1000)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    samples = [ms for per_thread in latencies for ms in per_thread]
    return LoadResult(
        loader="python",
        requests=len(samples),
        seconds=elapsed,
        errors=sum(errors),
        p50_ms=percentile(samples, 50),
        p90_ms=percentile(samples, 90),
        p99_ms=percentile(samples, 99),
        max_ms=max(samples, default=0.0),
    )


def _main(argv: list[str]) -> None:
    requests_file, port, connections, seconds, run_tag, headers = argv
    requests = []
    for line in Path(requests_file).read_text().splitlines():
        method, path, name, value, body = line.split("\t")
        requests.append(Request(method, path, (name, value) if name else None, body))
    result = python_load(
        requests, int(port), int(connections), float(seconds), run_tag, json.loads(headers)
    )
    print(json.dumps(result.__dict__))


if __name__ == "__main__":
    import sys

    _main(sys.argv[1:])
