"""The relay: sends what the publisher did not, exactly once across racing relays, again after
a death between send and mark (same dedup id), and stops cleanly on SIGTERM."""

from __future__ import annotations

import collections
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from payportal.events import publisher as publisher_module
from payportal.events.models import OutboxEvent
from payportal.events.publisher import sqs_client
from payportal.events.relay import Relay
from payportal.events.runner import run_loop
from payportal.payments.models import Payment
from payportal.payments.sweep import expire_due_payments
from payportal.portal.models import PaymentTotalDelta
from payportal.portal.rollup import fold_deltas
from tests.factories import access_token, bearer, create_merchant, create_payment_row

ROOT = Path(__file__).resolve().parents[3]
RELAY_SCRIPT = Path(sys.executable).with_name("payportal-relay")


class ProcessDied(BaseException):
    """What a SIGKILL looks like from inside: nothing after this line runs."""


@pytest.fixture
def relay_settings(settings, fifo_queue, sqs_server):
    return settings.model_copy(
        update={"sqs_queue_url": fifo_queue, "aws_endpoint_url": sqs_server.url}
    )


def recording_client(settings, sent: list[str]):
    """A real boto3 client that notes the dedup id of every entry it sends."""
    client = sqs_client(settings)

    def note(params, **_):
        sent.extend(entry["MessageDeduplicationId"] for entry in params["Entries"])

    client.meta.events.register("provide-client-params.sqs.SendMessageBatch", note)
    return client


def test_two_relays_racing_over_1000_events_send_each_exactly_once(
    relay_settings, session_factory, append_committed, drain_queue, unsent_count, committed_db
):
    with session_factory() as session, session.begin():
        merchants = [create_merchant(session, relay_settings).id for _ in range(4)]
    event_ids = {str(i) for i in append_committed(merchants, 1000)}

    drainer = drain_queue(relay_settings.sqs_queue_url)
    sent: list[list[str]] = [[], []]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run_relay(n: int) -> None:
        engine = sa.create_engine(committed_db.url, pool_size=2)
        try:
            relay = Relay(
                sessionmaker(bind=engine, expire_on_commit=False),
                relay_settings,
                client=recording_client(relay_settings, sent[n]),
                batch_size=50,
            )
            barrier.wait(timeout=10)
            run_loop(relay.step, stop=threading.Event(), poll_seconds=0.1, once=True)
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run_relay, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert errors == []
    assert unsent_count() == 0
    assert sent[0] and sent[1], "both relays took part"
    all_sent = sent[0] + sent[1]
    assert len(all_sent) == 1000
    assert set(all_sent) == event_ids

    messages = drainer.finish(expect=1000)
    received = collections.Counter(m["Attributes"]["MessageDeduplicationId"] for m in messages)
    assert set(received) == event_ids
    assert set(received.values()) == {1}


def test_a_relay_dying_between_send_and_mark_resends_with_the_same_dedup_id(
    relay_settings,
    session_factory,
    committed_merchant,
    append_committed,
    receive_all,
    unsent_count,
    monkeypatch,
):
    [event_id] = append_committed([committed_merchant.id], 1)
    sent: list[str] = []
    client = recording_client(relay_settings, sent)

    def die(*_args, **_kwargs):
        raise ProcessDied

    with monkeypatch.context() as patch:
        patch.setattr(publisher_module, "record_outcome", die)
        with pytest.raises(ProcessDied):
            Relay(session_factory, relay_settings, client=client).step()

    # the message went out, but the mark rolled back with the dead transaction
    assert sent == [str(event_id)]
    assert unsent_count() == 1

    Relay(session_factory, relay_settings, client=client).step()

    assert sent == [str(event_id), str(event_id)]
    assert unsent_count() == 0
    # SQS FIFO drops the re-send by its dedup id: the consumer sees the event once
    [message] = receive_all(relay_settings.sqs_queue_url, expect=1)
    assert message["Attributes"]["MessageDeduplicationId"] == str(event_id)


def test_failures_back_off_per_event_and_record_the_error(
    relay_settings, session_factory, committed_merchant, append_committed, sqs_server
):
    event_ids = append_committed([committed_merchant.id], 35)
    tried: list[str] = []
    relay = Relay(session_factory, relay_settings, client=recording_client(relay_settings, tried))
    sqs_server.stop()
    try:
        started = time.time()
        relay.step()
        relay.step()  # nothing due again yet: the backoff holds every event
        elapsed = time.time() - started
    finally:
        sqs_server.start()
    with session_factory() as session:
        events = session.scalars(sa.select(OutboxEvent).where(OutboxEvent.id.in_(event_ids)))
        events = list(events)
    assert len(events) == 35
    for event in events:
        assert event.published_at is None
        assert event.attempts == 1
        assert "EndpointConnectionError" in event.last_error
        assert 0.8 <= event.next_attempt_at.timestamp() - started <= 1.2 + elapsed
    # one unanswered batch was enough to put all 35 back: SQS was not asked four times
    assert len(tried) == 10
    assert relay.failed == 35
    assert relay.sent == 0


def test_the_relay_runs_the_expiry_sweep_and_publishes_its_events(
    relay_settings, session_factory, committed_merchant, receive_all
):
    with session_factory() as session, session.begin():
        payment = create_payment_row(session, relay_settings, committed_merchant, expires_in=-60)
    relay = Relay(session_factory, relay_settings, sweep=expire_due_payments)

    relay.step()

    with session_factory() as session:
        assert session.get(Payment, payment.id).status == "expired"
    [message] = receive_all(relay_settings.sqs_queue_url, expect=1)
    assert message["json"]["type"] == "payment.expired"
    assert message["MessageAttributes"]["paymentId"]["StringValue"] == str(payment.id)
    assert message["json"]["data"]["status"] == "expired"


def test_the_relay_folds_the_rollup_every_fold_interval(
    relay_settings, session_factory, committed_merchant
):
    def waiting() -> int:
        with session_factory() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(PaymentTotalDelta))

    folds = []

    def fold(factory):
        folds.append(fold_deltas(factory))

    settings = relay_settings.model_copy(update={"rollup_fold_interval": 0.3})
    relay = Relay(session_factory, settings, fold=fold)
    with session_factory() as session, session.begin():
        create_payment_row(session, settings, committed_merchant)
    relay.step()
    assert (folds, waiting()) == ([1], 0)

    with session_factory() as session, session.begin():
        create_payment_row(session, settings, committed_merchant)
    relay.step()  # within the interval: not yet
    assert (folds, waiting()) == ([1], 1)
    time.sleep(0.35)
    relay.step()
    assert (folds, waiting()) == ([1, 1], 0)


class RelayProcess:
    """`payportal-relay development.ini` in a process of its own, its log read as it comes."""

    def __init__(self, database_url: str, **env: str):
        self.process = subprocess.Popen(
            [str(RELAY_SCRIPT), "development.ini"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1", **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log and time.monotonic() < deadline:
            time.sleep(0.05)
        assert text in self.log, self.log

    def terminate(self, timeout: float = 15) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(5)
            self._reader.join(5)
            self.process.stderr.close()


def test_the_relay_process_publishes_then_exits_zero_on_sigterm(
    database_url, relay_settings, committed_merchant, append_committed, receive_all, unsent_count
):
    event_ids = {str(i) for i in append_committed([committed_merchant.id], 30)}
    relay = RelayProcess(
        database_url,
        SQS_QUEUE_URL=relay_settings.sqs_queue_url,
        AWS_ENDPOINT_URL=relay_settings.aws_endpoint_url,
    )
    try:
        relay.wait_for("relaying outbox events to")
        deadline = time.monotonic() + 30
        while unsent_count() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert unsent_count() == 0
    finally:
        returncode = relay.terminate()
    assert returncode == 0, relay.log
    assert "relay stopped: 30 events published" in relay.log
    messages = receive_all(relay_settings.sqs_queue_url, expect=30)
    assert {m["Attributes"]["MessageDeduplicationId"] for m in messages} == event_ids


def test_without_a_queue_the_relay_says_so_once_and_events_stay_visible(
    database_url, settings, committed_merchant, append_committed, unsent_count, live_testapp
):
    [event_id] = append_committed([committed_merchant.id], 1)
    relay = RelayProcess(database_url)
    try:
        relay.wait_for("SQS_QUEUE_URL is not set")
        time.sleep(2.5)  # a few more loop turns
    finally:
        returncode = relay.terminate()
    assert returncode == 0, relay.log
    assert relay.log.count("SQS_QUEUE_URL is not set") == 1
    assert unsent_count() == 1
    listed = live_testapp.get(
        "/api/v1/events", headers=bearer(access_token(settings, committed_merchant))
    ).json
    assert [e["id"] for e in listed["data"]] == [str(event_id)]


def test_the_sweep_runs_every_sweep_interval_and_survives_its_failures(settings, session_factory):
    calls: list[float] = []

    def failing_sweep(_session_factory, _settings):
        calls.append(time.monotonic())
        raise RuntimeError("database restarting")

    relay = Relay(
        session_factory, settings.model_copy(update={"sweep_interval": 1}), sweep=failing_sweep
    )
    started = time.monotonic()
    while len(calls) < 3 and time.monotonic() - started < 10:
        relay.step()
        time.sleep(0.05)

    assert len(calls) == 3  # each failure logged, and the relay carried on
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
    assert all(1.0 <= gap < 1.6 for gap in gaps), gaps
