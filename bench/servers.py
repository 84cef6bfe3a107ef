"""Server processes under test: start (bench/serve.py), wait until they answer, read their RSS,
profile them with py-spy, stop them with SIGTERM. With production.ini's `workers` > 1 the process
started is the supervisor and the requests are served by its worker processes."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cpu import descendants

BENCH_DIR = Path(__file__).resolve().parent
START_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ServerProcess:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mib(self) -> float:
        """Resident memory of one web process now, in MiB (Linux /proc): the largest worker's,
        or the server's own when it serves in one process. (The issue's target is per web
        process; a worker shares its pages inherited from the supervisor with the others.)"""
        workers = descendants(self.pid)
        return max((_rss_mib(pid) for pid in workers), default=_rss_mib(self.pid))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                # its workers too: killed alone, the supervisor would leave them serving
                for pid in descendants(self.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.process.kill()
                self.process.wait()


def _rss_mib(pid: int) -> float:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def start_server(which: str, environ: dict[str, str], log_dir: Path) -> ServerProcess:
    """bench/serve.py <which> in its own process; returns once it answers its health path."""
    port = free_port()
    log_path = log_dir / f"{which}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "serve.py"), which, str(port)],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(which, port, process, log_path)
    health = "/healthz" if which == "payportal" else "/ping"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{which} exited at start-up: {log_path.read_text()[-2000:]}")
        try:
            status, _ = get(port, health)
            if status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{which} did not answer {health} within {START_TIMEOUT} s")


def start_relays(count: int, environ: dict[str, str], ini: Path) -> list[subprocess.Popen]:
    """`payportal-relay <ini>` processes beside the app, as a deployment runs them: they send
    what the publisher has not, sweep expired payments and fold the dashboard rollup."""
    relay = Path(sys.executable).with_name("payportal-relay")
    return [
        subprocess.Popen(
            [str(relay), str(ini)],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def stop_relays(relays: list[subprocess.Popen]) -> None:
    for relay in relays:
        relay.terminate()  # it finishes the batch in hand first
    for relay in relays:
        try:
            relay.wait(120)
        except subprocess.TimeoutExpired:
            relay.kill()
            relay.wait()


def py_spy_binary() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start_profile(server: ServerProcess, seconds: float, output: Path) -> subprocess.Popen | None:
    """py-spy record of the GIL holder (where the server's Python CPU goes), collapsed stacks."""
    binary = py_spy_binary()
    if binary is None:
        return None
    return subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(server.pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            "250",
            "--gil",
            # the worker processes too, when production.ini runs several
            "--subprocesses",
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ,
    )
