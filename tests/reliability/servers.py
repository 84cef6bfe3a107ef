"""Real processes for the reliability scenarios: an .ini for the test database, a waitress
server started with pserve, raw HTTP to it, and its memory as the kernel counts it."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import TEST_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_ini(path: Path, database_url: str, port: int = 0, **overrides: str) -> Path:
    """An .ini the app, pserve and the relay read: the test settings on `database_url`."""
    settings = {**TEST_SETTINGS, "sqlalchemy.url": database_url, **overrides}
    lines = ["[app:main]", "use = egg:payportal"]
    lines += [f"{key} = {value.replace('%', '%%')}" for key, value in settings.items()]
    lines += [
        "",
        "[server:main]",
        "use = egg:payportal#waitress",
        f"listen = 127.0.0.1:{port}",
        "threads = 8",
        "shutdown_grace = 5",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def child_env(**extra: str) -> dict[str, str]:
    # pyramid's pkg_resources notice is not ours; the children must not die of it
    return {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT), **extra}


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Server:
    """A pserve (waitress) process on 127.0.0.1:port."""

    process: subprocess.Popen
    port: int
    log_path: Path

    def request(
        self, method: str, path: str, body: bytes | None = None, headers=None, timeout=30.0
    ) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            answer = conn.getresponse()
            return Response(answer.status, dict(answer.getheaders()), answer.read())
        finally:
            conn.close()

    def rss_kib(self, field: str = "VmRSS") -> int:
        """Resident memory (VmRSS) or its peak so far (VmHWM), in KiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"{field} not in /proc status")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_server(ini: Path, port: int, deadline: float = 30.0) -> Server:
    log_path = ini.with_suffix(".log")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "pserve"), str(ini)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(),
        )
    server = Server(process, port, log_path)
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{server.log()}")
        try:
            if server.request("GET", "/healthz", timeout=1).status == 200:
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise AssertionError(f"server did not start:\n{server.log()}")
