"""Fixtures of the events tests: moto's SQS server over real HTTP, a fresh queue per test, an
app instance with the publisher on, committed events, and a local webhook receiver."""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
from dataclasses import dataclass, field

import boto3
import pytest
import sqlalchemy as sa
import webtest
from pyramid.config import Configurator
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from sqlalchemy.orm import sessionmaker

from payportal.errors import Conflict
from payportal.events.models import OutboxEvent
from payportal.events.services import append_event
from tests.processes import free_port

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class SqsServer:
    """moto's SQS server on 127.0.0.1; stop() and start() again keep its queues."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        self._factory = ThreadedMotoServer
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = None

    def start(self) -> None:
        self._server = self._factory(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        self._server.stop()
        self._server = None

    def client(self):
        return boto3.session.Session().client("sqs", region_name="us-east-1", endpoint_url=self.url)


@pytest.fixture(scope="session")
def sqs_server():
    with pytest.MonkeyPatch.context() as patch:
        for name, value in AWS_ENV.items():
            patch.setenv(name, value)
        server = SqsServer()
        server.start()
        yield server
        if server._server is not None:
            server.stop()


@pytest.fixture
def sqs(sqs_server):
    """A test-side SQS client (reads what the app sent)."""
    return sqs_server.client()


@pytest.fixture
def fifo_queue(sqs):
    url = sqs.create_queue(
        QueueName=f"events-{uuid.uuid4().hex[:12]}.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    yield url
    sqs.delete_queue(QueueUrl=url)


def _receive_all(sqs, queue_url: str, *, expect: int = 0, timeout: float = 10.0) -> list[dict]:
    """Every message now in the queue (deleted as read, so FIFO groups keep flowing); waits
    up to `timeout` for at least `expect` of them."""
    messages = []
    deadline = time.monotonic() + timeout
    empty_polls = 0
    while time.monotonic() < deadline:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=30,
        ).get("Messages", [])
        if batch:
            empty_polls = 0
            messages.extend(batch)
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )
            continue
        if len(messages) >= expect:
            empty_polls += 1
            if empty_polls >= 3:
                break
        time.sleep(0.05)
    for message in messages:
        message["json"] = json.loads(message["Body"])
    return messages


class QueueDrainer:
    """Receives and deletes in a thread while producers send, as a real consumer would (moto
    slows down with every message left in a queue)."""

    def __init__(self, server: SqsServer, queue_url: str, consumers: int = 2):
        self._received: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._server = server
        self._queue_url = queue_url
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(server.client(),), daemon=True)
            for _ in range(consumers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def messages(self) -> list[dict]:
        """Distinct stored messages: moto may hand one message to two consumers at once."""
        with self._lock:
            return list(self._received.values())

    def _keep(self, batch: list[dict]) -> None:
        with self._lock:
            for message in batch:
                self._received.setdefault(message["MessageId"], message)

    def _run(self, sqs) -> None:
        while not self._stop.is_set():
            batch = _receive_all(sqs, self._queue_url, timeout=0.5)
            self._keep(batch)
            if not batch:
                self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def finish(self, expect: int, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < expect and time.monotonic() < deadline:
            time.sleep(0.1)
        self.stop()
        self._keep(_receive_all(self._server.client(), self._queue_url, timeout=1))
        return self.messages


@pytest.fixture
def drain_queue(sqs_server):
    """drain_queue(queue_url) -> a QueueDrainer already consuming that queue."""
    drainers = []

    def start(queue_url: str) -> QueueDrainer:
        drainers.append(QueueDrainer(sqs_server, queue_url))
        return drainers[-1]

    yield start
    for drainer in drainers:
        drainer.stop()


@pytest.fixture
def receive_all(sqs):
    """receive_all(queue_url, expect=N): the messages in the queue, bodies parsed as "json"."""

    def receive(queue_url: str, *, expect: int = 0, timeout: float = 10.0) -> list[dict]:
        return _receive_all(sqs, queue_url, expect=expect, timeout=timeout)

    return receive


def add_test_views(app) -> None:
    """A route that appends events in the request's own transaction, then commits or fails.

    POST /_test/events {"merchant_id", "count", "fail"?, "serialization_failures"?}
    """

    def append_events_view(request):
        body = request.json_body
        ids = []
        for _ in range(body.get("count", 1)):
            event = append_event(
                request.dbsession,
                merchant_id=uuid.UUID(body["merchant_id"]),
                type=body.get("type", "payment.initiated"),
                data={"reference": f"pay_{uuid.uuid4().hex[:16]}", "amount": 1050},
                payment_id=uuid.uuid4(),
                correlation_id=request.correlation_id,
            )
            ids.append(str(event.id))
        request.dbsession.flush()
        if body.get("fail"):
            raise Conflict("the change after the event failed")
        if request.environ["retry.attempt"] < body.get("serialization_failures", 0):
            # a real SQLSTATE 40001 from PostgreSQL, as a concurrent update would cause
            request.dbsession.execute(
                sa.text(
                    "DO $$ BEGIN RAISE EXCEPTION 'concurrent update' "
                    "USING ERRCODE = 'serialization_failure'; END $$"
                )
            )
        return Response(json={"event_ids": ids, "attempt": request.environ["retry.attempt"]})

    config = Configurator(registry=app.registry)
    config.add_route("test_append_events", "/_test/events")
    config.add_view(
        append_events_view,
        route_name="test_append_events",
        request_method="POST",
        permission=NO_PERMISSION_REQUIRED,
    )
    config.commit()


@dataclass
class PublishingApp:
    app: object
    testapp: webtest.TestApp
    queue_url: str

    @property
    def publisher(self):
        return self.app.registry.event_publisher

    def append(self, merchant_id, count: int = 1, status: int = 200, headers=None, **extra):
        body = {"merchant_id": str(merchant_id), "count": count, **extra}
        return self.testapp.post_json("/_test/events", body, status=status, headers=headers)


def build_app(app_settings, **overrides):
    from payportal import main

    return main({}, **{**app_settings, **overrides})


@pytest.fixture
def make_publishing_app(app_settings, sqs_server, committed_db):
    """Apps of their own with the publisher on (the shared test app keeps it off)."""
    apps = []

    def make(queue_url: str, **overrides) -> PublishingApp:
        app = build_app(
            app_settings,
            **{
                "payportal.sqs_queue_url": queue_url,
                "payportal.aws_endpoint_url": sqs_server.url,
                "payportal.publisher_enabled": "true",
                **overrides,
            },
        )
        add_test_views(app)
        apps.append(app)
        return PublishingApp(
            app, webtest.TestApp(app, extra_environ={"HTTP_HOST": "localhost"}), queue_url
        )

    yield make
    for app in apps:
        publisher = getattr(app.registry, "event_publisher", None)
        if publisher is not None:
            publisher.close()
        app.registry.dbengine.dispose()


@pytest.fixture
def publishing_app(make_publishing_app, fifo_queue):
    return make_publishing_app(fifo_queue)


@pytest.fixture
def session_factory(committed_db):
    """Sessions that really commit (services, relays and workers use these)."""
    return sessionmaker(bind=committed_db, expire_on_commit=False)


@pytest.fixture
def committed_merchant(session_factory, settings):
    from tests.factories import create_merchant

    with session_factory() as session, session.begin():
        return create_merchant(session, settings)


@pytest.fixture
def append_committed(session_factory):
    """append_committed([merchant ids], count): events committed by a service transaction."""

    def append(merchant_ids, count: int) -> list[uuid.UUID]:
        return _append_committed(session_factory, merchant_ids, count)

    return append


def _append_committed(session_factory, merchant_ids, count: int) -> list[uuid.UUID]:
    ids = []
    with session_factory() as session, session.begin():
        for n in range(count):
            merchant_id = merchant_ids[n % len(merchant_ids)]
            event = append_event(
                session,
                merchant_id=merchant_id,
                type="payment.initiated",
                data={"n": n},
                payment_id=uuid.uuid4(),
                correlation_id=f"corr-{n}",
            )
            ids.append(event.id)
    return ids


@pytest.fixture
def unsent_count(session_factory):
    """unsent_count(): how many outbox events are not published yet."""

    def count() -> int:
        with session_factory() as session:
            return session.scalar(
                sa.select(sa.func.count()).where(OutboxEvent.published_at.is_(None))
            )

    return count


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float


@dataclass
class WebhookReceiver:
    """A local HTTP server answering with the next scripted status (then 200); paths under
    /slow answer after a second."""

    url: str
    requests: list[ReceivedRequest] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *statuses: int) -> None:
        with self.lock:
            self.statuses[:] = statuses


@pytest.fixture
def receiver():
    state = WebhookReceiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path.startswith("/slow"):
                time.sleep(1.0)
            with state.lock:
                state.requests.append(
                    ReceivedRequest(self.path, dict(self.headers), body, time.time())
                )
                status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", f"{state.url}/moved")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
