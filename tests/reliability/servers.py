"""Real processes for the reliability scenarios: an .ini for the test database, a waitress
server started with pserve, raw HTTP to it, and its memory as the kernel counts it."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


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


def start_server(ini: Path, port: int, deadline: float = 30.0, **env: str) -> Server:
    log_path = ini.with_suffix(".log")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "pserve"), str(ini)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(**env),
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


# moto accepts any credentials; the server process and the relays read these from the environment
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class SqsServer:
    """moto's SQS server on its own port; stop() and start() again keep its queues."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self):
        import boto3

        return boto3.session.Session().client(
            "sqs",
            region_name=AWS_ENV["AWS_DEFAULT_REGION"],
            endpoint_url=self.url,
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        )

    def fifo_queue(self) -> str:
        name = f"events-{os.urandom(6).hex()}.fifo"
        return self.client().create_queue(QueueName=name, Attributes={"FifoQueue": "true"})[
            "QueueUrl"
        ]

    def drain(self, queue_url: str) -> QueueDrainer:
        """A consumer receiving and deleting in a thread from now on, as a real one would (moto
        slows down with every message left in a queue)."""
        return QueueDrainer(self.client(), queue_url)


class QueueDrainer:
    """Receives every message of a queue, deleting each so its FIFO group keeps flowing; rides
    out the queue server being down."""

    def __init__(self, sqs, queue_url: str):
        self.messages: list[dict] = []
        self._sqs = sqs
        self._queue_url = queue_url
        self._stop = threading.Event()
        self._empty_polls = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import botocore.exceptions

        while not self._stop.is_set():
            try:
                self._receive_once()
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                self._stop.wait(0.2)  # the queue server is down: a consumer waits and retries

    def _receive_once(self) -> None:
        batch = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            VisibilityTimeout=60,
        ).get("Messages", [])
        if not batch:
            self._empty_polls += 1
            self._stop.wait(0.05)
            return
        self._sqs.delete_message_batch(
            QueueUrl=self._queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )
        self._empty_polls = 0
        self.messages.extend(batch)

    def finish(self, expect: int, timeout: float = 60.0) -> list[dict]:
        """Wait for `expect` messages (at most `timeout`), then until the queue stays empty."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (
            len(self.messages) < expect or self._empty_polls < 3
        ):
            time.sleep(0.05)
        self._stop.set()
        self._thread.join(30)
        return self.messages


class ThrowawayPostgres:
    """A PostgreSQL of the test's own (pgserver's binaries) on a Unix socket in its data
    directory; stop() and start() restart it on the same data and the same socket."""

    def __init__(self, data_dir: Path):
        from payportal.scripts.devdb import start_embedded_postgres

        self.data_dir = data_dir
        # cleanup_mode None: this object, not pgserver's handle bookkeeping, stops the server
        self._handle = start_embedded_postgres(data_dir, cleanup_mode=None)
        self.uri = self._handle.get_uri()
        self.socket_dir = self._handle.get_postmaster_info().socket_dir

    def url(self, database: str) -> str:
        from payportal.scripts.devdb import sqlalchemy_url

        return sqlalchemy_url(self.uri, database)

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(list(args), pgdata=self.data_dir, user=self._handle.system_user, timeout=60)

    def stop(self) -> None:
        # fast: open sessions are cut off at once, as a crash or a failover would
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        log = str(self.data_dir / "log")
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", log, "start")

    def create_database(self, name: str) -> None:
        self._handle.psql(f'CREATE DATABASE "{name}";')
