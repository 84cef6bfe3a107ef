"""The in-process publisher against real PostgreSQL and moto's SQS: what waited is claimed in
one transaction and marked in one UPDATE, sent in full batches with each merchant's order kept;
rows a relay holds are left to it; a forked worker publishes from threads and a client of its own;
commits close together share a call within the linger, and a full batch never waits for it.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from payportal.events.models import OutboxEvent
from payportal.events.relay import Relay
from payportal.server import run_after_fork_hooks
from tests.factories import create_merchant


def _merchants(session_factory, settings, count: int) -> list[uuid.UUID]:
    with session_factory() as session, session.begin():
        return [create_merchant(session, settings).id for _ in range(count)]


def _published(session_factory, event_ids) -> set[uuid.UUID]:
    with session_factory() as session:
        return set(
            session.scalars(
                sa.select(OutboxEvent.id).where(
                    OutboxEvent.id.in_(list(event_ids)), OutboxEvent.published_at.is_not(None)
                )
            )
        )


def _count_batches(client, sizes: list[int]) -> None:
    client.meta.events.register(
        "provide-client-params.sqs.SendMessageBatch",
        lambda params, **_: sizes.append(len(params["Entries"])),
    )


def test_what_waited_goes_in_one_claim_one_update_and_full_batches_in_merchant_order(
    publishing_app, session_factory, settings, append_committed, receive_all
):
    merchants = _merchants(session_factory, settings, 12)
    event_ids = append_committed(merchants, 60)
    pairs = [(merchants[n % 12], event_id) for n, event_id in enumerate(event_ids)]
    publisher = publishing_app.publisher
    sizes: list[int] = []
    _count_batches(publisher.sender.client(), sizes)
    statements: list[str] = []
    engine = publishing_app.app.registry.dbengine

    def note(_conn, _cursor, statement, *_args):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        publisher.submit(pairs)  # sixty commits' events, waiting together
        assert publisher.wait_idle(30)
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)

    assert _published(session_factory, event_ids) == set(event_ids)
    assert sum("FOR UPDATE SKIP LOCKED" in s for s in statements) == 1
    assert sum(s.startswith("UPDATE outbox_events SET published_at") for s in statements) == 1
    # sixty events in seven calls at most (six full ones would do): the oldest ten alone
    # (until SQS has answered once), the other fifty side by side
    assert sizes[0] == 10
    assert sum(sizes) == 60
    assert len(sizes) <= 7
    received: dict[str, list[str]] = {}
    for message in receive_all(publishing_app.queue_url, expect=60, timeout=30):
        attributes = message["Attributes"]
        received.setdefault(attributes["MessageGroupId"], []).append(
            attributes["MessageDeduplicationId"]
        )
    assert received == {
        f"merchant-{m}": [str(e) for n, e in enumerate(event_ids) if merchants[n % 12] == m]
        for m in merchants
    }


def test_rows_a_relay_holds_are_skipped_and_left_to_it(
    publishing_app, session_factory, committed_merchant, append_committed, unsent_count
):
    event_ids = append_committed([committed_merchant.id], 5)
    held = event_ids[1:3]
    publisher = publishing_app.publisher
    with session_factory() as relay_session, relay_session.begin():
        relay_session.execute(
            sa.select(OutboxEvent.id).where(OutboxEvent.id.in_(held)).with_for_update()
        )
        publisher.submit([(committed_merchant.id, e) for e in event_ids])
        assert publisher.wait_idle(30)
        assert _published(session_factory, event_ids) == set(event_ids) - set(held)

    assert unsent_count() == 2
    relay = Relay(session_factory, publishing_app.app.registry.payportal_settings)
    relay.step()
    assert unsent_count() == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_worker_publishes_from_a_thread_and_client_of_its_own(
    publishing_app, session_factory, committed_merchant, append_committed, receive_all
):
    first, in_child, after = append_committed([committed_merchant.id], 3)
    app, publisher = publishing_app.app, publishing_app.publisher
    # the parent has published: its thread runs and its client exists
    publisher.submit([(committed_merchant.id, first)])
    assert publisher.wait_idle(30)
    parent_thread = publisher._process.thread
    parent_client = publisher.sender.client()

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a worker, as payportal.server forks it; never back into pytest
        status = b"E"
        try:
            run_after_fork_hooks(app)
            publisher.submit([(committed_merchant.id, in_child)])
            idle = publisher.wait_idle(30)
            process = publisher._process
            own_thread = process.pid == os.getpid() and process.thread is not parent_thread
            own_client = publisher.sender.client() is not parent_client
            status = b"1" if idle and own_thread and own_client else b"0"
        finally:
            os.write(write, status)
            os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"1"
    finally:
        os.waitpid(pid, 0)
        os.close(read)

    assert _published(session_factory, [first, in_child]) == {first, in_child}
    # the parent's own publisher is untouched by the child's
    publisher.submit([(committed_merchant.id, after)])
    assert publisher.wait_idle(30)
    assert publisher._process.thread is parent_thread
    assert threading.current_thread() is threading.main_thread()
    messages = receive_all(publishing_app.queue_url, expect=3)
    assert [m["Attributes"]["MessageDeduplicationId"] for m in messages] == [
        str(first),
        str(in_child),
        str(after),
    ]


def test_commits_in_quick_succession_go_in_one_call_within_the_linger(
    make_publishing_app, fifo_queue, session_factory, settings, append_committed, receive_all
):
    app = make_publishing_app(fifo_queue, **{"payportal.publisher_linger_ms": "1000"})
    merchants = _merchants(session_factory, settings, 3)
    event_ids = append_committed(merchants, 3)
    publisher = app.publisher
    sizes: list[int] = []
    _count_batches(publisher.sender.client(), sizes)
    for merchant_id, event_id in zip(merchants, event_ids, strict=True):
        publisher.submit([(merchant_id, event_id)])  # three commits, 0.1 s apart
        time.sleep(0.1)
    assert publisher.wait_idle(10)

    # one SendMessageBatch for the three, not one each
    assert sizes == [3]
    assert _published(session_factory, event_ids) == set(event_ids)
    assert len(receive_all(app.queue_url, expect=3)) == 3


def test_a_full_batch_does_not_wait_for_the_linger(
    make_publishing_app, fifo_queue, committed_merchant, append_committed, session_factory
):
    app = make_publishing_app(fifo_queue, **{"payportal.publisher_linger_ms": "1000"})
    event_ids = append_committed([committed_merchant.id], 10)
    publisher = app.publisher
    publisher.sender.client()  # made before the clock starts
    began = time.monotonic()
    publisher.submit([(committed_merchant.id, e) for e in event_ids])
    assert publisher.wait_idle(10)

    assert time.monotonic() - began < 0.9
    assert _published(session_factory, event_ids) == set(event_ids)


def test_stopping_during_the_linger_still_sends_what_waits(
    make_publishing_app, fifo_queue, committed_merchant, append_committed, session_factory
):
    app = make_publishing_app(fifo_queue, **{"payportal.publisher_linger_ms": "1000"})
    (event_id,) = append_committed([committed_merchant.id], 1)
    publisher = app.publisher
    publisher.submit([(committed_merchant.id, event_id)])
    time.sleep(0.1)  # the thread has it and is lingering
    began = time.monotonic()
    publisher.close()

    assert time.monotonic() - began < 0.9
    assert _published(session_factory, [event_id]) == {event_id}


def test_a_worker_makes_its_sqs_client_from_what_start_up_loaded(
    make_publishing_app, fifo_queue, monkeypatch
):
    import botocore.loaders

    from payportal.events import publisher as publisher_module

    # as in a fresh process: no boto3 session yet
    monkeypatch.setattr(publisher_module, "_boto3_session", None)
    app = make_publishing_app(fifo_queue)
    reads: list[str] = []
    load_file = botocore.loaders.JSONFileLoader.load_file

    def counted(loader, file_path):
        reads.append(file_path)
        return load_file(loader, file_path)

    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file", counted)
    client = publisher_module.sqs_client(app.app.registry.payportal_settings)

    # the SQS model, endpoint rules and retry settings came from the app's start-up
    assert reads == []
    assert client.get_queue_url(QueueName=fifo_queue.rsplit("/", 1)[1])["QueueUrl"]
