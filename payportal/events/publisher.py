"""Sending outbox events to SQS: the client, the message format, marking, and the in-process
publisher that sends what a request committed without the request waiting for it.

Threads and SQS clients belong to the process that uses them: a server that forks worker
processes after loading the app (payportal.server) gets, in each worker, a publisher whose
thread, sender pool and client are made on that worker's first use, never inherited from the
parent (a thread does not survive a fork, and a client's pooled connections must not be shared).
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from payportal.events.models import OutboxEvent
from payportal.events.services import envelope
from payportal.metrics import PUBLISH_FAILURES
from payportal.timestamps import iso_z

log = logging.getLogger(__name__)

SEND_BATCH_LIMIT = 10  # SendMessageBatch takes at most ten entries
CONNECT_TIMEOUT = 2
READ_TIMEOUT = 5
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 600.0
LAST_ERROR_CHARS = 1000
# events waiting for the publisher of one process; past this the relay sends the rest, memory
# stays flat
MAX_PENDING_EVENTS = 10_000
# events one claim transaction takes (the submissions that waited while the last one ran)
CLAIM_LIMIT = 100
# SendMessageBatch calls one process makes at once (a claim of 100 is ten calls)
SENDERS = 4
# how long a stopping server waits for queued events to go out
SHUTDOWN_SECONDS = 5.0

# Guards the making of per-process things (threads, clients). A fork while another thread holds
# it would leave the child's copy locked forever, so the child gets a fresh one.
_process_lock = threading.Lock()
# Guards the boto3 session clients are made from (a session is not thread-safe; its clients are).
_session_lock = threading.Lock()
_boto3_session: Any = None


def _new_process_lock() -> None:
    global _process_lock, _session_lock
    _process_lock = threading.Lock()
    _session_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_process_lock)


class PerProcess:
    """A value made on first use in each process: a forked child makes its own."""

    def __init__(self, make: Callable[[], Any], value: Any = None):
        self._make = make
        # a value given up front (tests hand in a client) belongs to the process that made us
        self._pid = os.getpid() if value is not None else None
        self._value = value

    def get(self) -> Any:
        if self._pid != os.getpid():
            with _process_lock:
                if self._pid != os.getpid():
                    self._value = self._make()
                    self._pid = os.getpid()
        return self._value


def _make_client(**options):
    """An SQS client from the one boto3 session of this process (and of the processes forked
    from it): the session keeps the service model, endpoint rules and retry settings it loaded
    for its first client, so a later client costs ~2 ms instead of ~60 (~200 with the import).

    boto3 is imported here, so processes that publish nothing do not load it.
    """
    global _boto3_session
    import boto3

    with _session_lock:
        if _boto3_session is None:
            _boto3_session = boto3.session.Session()
        return _boto3_session.client("sqs", **options)


def sqs_client(settings, *, max_attempts: int = 3, max_pool_connections: int = 10):
    """A boto3 SQS client with standard retries and short timeouts (a slow SQS never blocks)."""
    import botocore.config

    config = botocore.config.Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        max_pool_connections=max_pool_connections,
    )
    return _make_client(
        region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url, config=config
    )


def preload_sqs_client(settings) -> None:
    """Import boto3 and load what an SQS client needs, in the process that forks the workers.

    A worker then makes its publisher's client in milliseconds. Left to the first commit, each
    worker spent ~0.2 s of CPU on it under load, while that commit's events and every later
    one's waited. The throwaway client is given placeholder keys: it is never used, and making
    it must not look for credentials (on EC2 that is a call to the instance metadata service),
    which each process still does for its real client.
    """
    _make_client(
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        aws_access_key_id="preload",
        aws_secret_access_key="preload",  # noqa: S106 - not a secret, never sent
    )


def is_fifo(queue_url: str) -> bool:
    return queue_url.endswith(".fifo")


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def message_entry(event: OutboxEvent, *, fifo: bool) -> dict:
    """One SendMessageBatch entry: the envelope as body, routing facts as message attributes.

    `event` is an OutboxEvent or a row with the same attributes (what claim_events returns).
    """
    attributes = {
        "eventType": _string(event.type),
        "merchantId": _string(str(event.merchant_id)),
        "timestamp": _string(iso_z(event.created_at)),
    }
    if event.payment_id is not None:
        attributes["paymentId"] = _string(str(event.payment_id))
    if event.correlation_id:
        attributes["correlationId"] = _string(event.correlation_id)
    entry = {
        "Id": event.id.hex,
        "MessageBody": json.dumps(envelope(event), separators=(",", ":")),
        "MessageAttributes": attributes,
    }
    if fifo:
        # one group per merchant keeps each merchant's events in order; the event id lets SQS
        # drop a re-send (a relay that died between sending and marking)
        entry["MessageGroupId"] = f"merchant-{event.merchant_id}"
        entry["MessageDeduplicationId"] = str(event.id)
    return entry


def backoff_seconds(attempts: int) -> float:
    """1 s after the first failure, doubling up to 10 min, with jitter so retries spread out."""
    base = BACKOFF_FIRST_SECONDS * 2 ** max(0, attempts - 1)
    # jitter only spreads retries out; nothing secret depends on it
    return min(BACKOFF_CAP_SECONDS, base * random.uniform(0.8, 1.2))  # noqa: S311


@dataclass
class PublishOutcome:
    sent: list[uuid.UUID] = field(default_factory=list)
    failed: dict[uuid.UUID, str] = field(default_factory=dict)
    # SQS did not answer at all (as opposed to refusing some messages)
    unreachable: bool = False

    def add(self, other: PublishOutcome) -> None:
        self.sent.extend(other.sent)
        self.failed.update(other.failed)
        self.unreachable = self.unreachable or other.unreachable


def send_batch(client, queue_url: str, events: Sequence[OutboxEvent]) -> PublishOutcome:
    """Send up to ten events; an unreachable SQS fails them all, a partial failure some."""
    import botocore.exceptions

    by_entry = {event.id.hex: event.id for event in events}
    entries = [message_entry(event, fifo=is_fifo(queue_url)) for event in events]
    try:
        response = client.send_message_batch(QueueUrl=queue_url, Entries=entries)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:LAST_ERROR_CHARS]
        return PublishOutcome(failed={event.id: error for event in events}, unreachable=True)
    outcome = PublishOutcome(sent=[by_entry[item["Id"]] for item in response.get("Successful", [])])
    for item in response.get("Failed", []):
        error = f"{item.get('Code')}: {item.get('Message', '')}"[:LAST_ERROR_CHARS]
        outcome.failed[by_entry[item["Id"]]] = error
    return outcome


def plan_chains(events: Sequence, chains: int) -> list[list[list]]:
    """Split claimed events (oldest first) into at most `chains` chains of batches of ten.

    The chains are sent side by side, each one's batches one after the other. A merchant's
    events all go in one chain, in the order given, so a FIFO queue gets them in that order.
    Merchants fill the chains largest first up to a whole number of batches each, so the claim
    takes as few calls as its size allows (ceil(n / 10) when the merchants pack), in as few
    rounds as `chains` allows.
    """
    by_merchant: dict[Any, list[int]] = {}
    for index, event in enumerate(events):
        by_merchant.setdefault(event.merchant_id, []).append(index)
    calls = math.ceil(len(events) / SEND_BATCH_LIMIT)
    count = min(chains, calls, len(by_merchant))
    if count <= 1:
        ordered = [list(events)]
    else:
        capacity = math.ceil(calls / count) * SEND_BATCH_LIMIT
        loads = [0] * count
        members: list[list[int]] = [[] for _ in range(count)]
        for indexes in sorted(by_merchant.values(), key=len, reverse=True):
            fits = [n for n in range(count) if loads[n] + len(indexes) <= capacity]
            chain = fits[0] if fits else loads.index(min(loads))
            loads[chain] += len(indexes)
            members[chain].extend(indexes)
        ordered = [[events[i] for i in sorted(chain)] for chain in members if chain]
    return [
        [
            chain[start : start + SEND_BATCH_LIMIT]
            for start in range(0, len(chain), SEND_BATCH_LIMIT)
        ]
        for chain in ordered
    ]


class BatchSender:
    """Sends claimed events to SQS, up to `senders` SendMessageBatch calls at once.

    Until SQS has answered once (and again after it did not answer), the oldest ten go alone
    first, so a dead SQS costs one call's timeouts, not one per batch. Once a call finds SQS
    unreachable, no batch starts after it: the rest fail with the same error and back off.
    """

    def __init__(self, settings, *, client=None, senders: int = SENDERS):
        self.senders = max(1, senders)
        self._client = PerProcess(
            lambda: sqs_client(settings, max_pool_connections=max(10, self.senders)), client
        )
        # the calling thread runs one chain; these threads the others
        self._pool = PerProcess(
            lambda: (
                ThreadPoolExecutor(self.senders - 1, thread_name_prefix="payportal-sqs")
                if self.senders > 1
                else None
            )
        )
        self._answering = False

    def client(self):
        return self._client.get()

    def send(self, queue_url: str, events: Sequence) -> PublishOutcome:
        outcome = PublishOutcome()
        if not events:
            return outcome
        client = self.client()
        rest = list(events)
        if not self._answering or len(rest) <= SEND_BATCH_LIMIT:
            first, rest = rest[:SEND_BATCH_LIMIT], rest[SEND_BATCH_LIMIT:]
            outcome.add(send_batch(client, queue_url, first))
            self._answering = not outcome.unreachable
            if outcome.unreachable:
                error = next(iter(outcome.failed.values()))
                outcome.failed.update({event.id: error for event in rest})
                return outcome
        if rest:
            outcome.add(self._send_chains(client, queue_url, plan_chains(rest, self.senders)))
            self._answering = not outcome.unreachable
        return outcome

    def _send_chains(self, client, queue_url: str, chains: list[list[list]]) -> PublishOutcome:
        unreachable: list[str] = []  # the first error of a call SQS did not answer

        def run_chain(batches: list[list]) -> PublishOutcome:
            outcome = PublishOutcome()
            for number, batch in enumerate(batches):
                if unreachable:
                    left = [event for later in batches[number:] for event in later]
                    outcome.failed.update({event.id: unreachable[0] for event in left})
                    outcome.unreachable = True
                    break
                result = send_batch(client, queue_url, batch)
                outcome.add(result)
                if result.unreachable:
                    unreachable.append(next(iter(result.failed.values())))
            return outcome

        pool = self._pool.get()
        if pool is None:
            outcome = PublishOutcome()
            for chain in chains:
                outcome.add(run_chain(chain))
            return outcome
        others = [pool.submit(run_chain, chain) for chain in chains[1:]]
        try:
            outcome = run_chain(chains[0])
        finally:
            # every call has ended before the caller commits or rolls back (and unlocks)
            wait(others)
        for future in others:
            outcome.add(future.result())
        return outcome


def record_outcome(session, outcome: PublishOutcome, attempts: dict[uuid.UUID, int]) -> None:
    """Mark what was sent (one UPDATE) and push back what failed, each by its own backoff."""
    table = OutboxEvent.__table__
    if outcome.sent:
        session.execute(
            sa.update(table)
            .where(table.c.id.in_(outcome.sent))
            .values(published_at=sa.func.clock_timestamp(), last_error=None)
        )
    if outcome.failed:
        PUBLISH_FAILURES.inc(len(outcome.failed))
        session.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("event_id"))
            .values(
                attempts=table.c.attempts + 1,
                next_attempt_at=sa.func.clock_timestamp()
                + sa.func.make_interval(0, 0, 0, 0, 0, 0, sa.bindparam("delay", type_=sa.Float)),
                last_error=sa.bindparam("error"),
            ),
            [
                {"event_id": event_id, "delay": backoff_seconds(attempts[event_id] + 1), "error": e}
                for event_id, e in outcome.failed.items()
            ],
        )


def publish_claimed(
    session, sender: BatchSender, queue_url: str, events: Sequence
) -> PublishOutcome:
    """Send events already locked by the caller's transaction, then record the outcome in it
    (the marks commit with the transaction that held the locks)."""
    outcome = sender.send(queue_url, events)
    record_outcome(session, outcome, {event.id: event.attempts for event in events})
    return outcome


# what a claim reads: the columns of the message and the attempts of the backoff, as rows
CLAIMED_COLUMNS = (
    OutboxEvent.id,
    OutboxEvent.merchant_id,
    OutboxEvent.type,
    OutboxEvent.payment_id,
    OutboxEvent.data,
    OutboxEvent.correlation_id,
    OutboxEvent.created_at,
    OutboxEvent.attempts,
)


def claim_events(session, event_ids: Iterable[uuid.UUID]) -> list:
    """Lock these events if still unsent, oldest first; a relay holding one makes us skip it."""
    return list(
        session.execute(
            sa.select(*CLAIMED_COLUMNS)
            .where(OutboxEvent.id.in_(list(event_ids)), OutboxEvent.published_at.is_(None))
            .order_by(OutboxEvent.created_at, OutboxEvent.id)
            .with_for_update(skip_locked=True)
        )
    )


class _ProcessPublisher:
    """The publisher's part that lives in one process: the submissions and the thread."""

    def __init__(self):
        self.pid = os.getpid()
        self.submissions: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None
        self.idle = threading.Condition()
        self.unfinished = 0  # submissions not yet sent or given back to the relay
        self.pending_events = 0

    def done(self, submissions: int, events: int) -> None:
        with self.idle:
            self.unfinished -= submissions
            self.pending_events -= events
            self.idle.notify_all()


class Publisher:
    """Sends committed events as soon as their transaction commits, from a thread of its own.

    The thread takes what was submitted while it was busy (up to CLAIM_LIMIT events; less than
    a batch waits up to `publisher_linger_ms` for more), claims it in one transaction, sends it
    as SendMessageBatch calls side by side (BatchSender: each merchant's events in one chain, in
    commit order, so a FIFO queue keeps them in order), marks it published in one UPDATE and
    commits; the busier the server, the fuller the batches. Best effort by design: whatever it
    cannot send (SQS down, too much waiting, process killed) stays unpublished in the outbox,
    where the relay finds it.
    """

    def __init__(self, session_factory, settings, *, client=None, senders: int = SENDERS):
        self.session_factory = session_factory
        self.queue_url: str = settings.sqs_queue_url
        self.linger = settings.publisher_linger_ms / 1000
        self.sender = BatchSender(settings, client=client, senders=senders)
        self._process: _ProcessPublisher | None = None

    def after_commit(self, committed: bool, events: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
        """The transaction's after-commit hook: runs in the request thread, so it only enqueues
        the (merchant_id, event_id) pairs the transaction appended."""
        if committed and events:
            self.submit(events)

    def submit(self, events: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> None:
        process = self._started()
        event_ids = [event_id for _merchant_id, event_id in events]
        with process.idle:
            if process.pending_events + len(event_ids) > MAX_PENDING_EVENTS:
                log.warning("publisher queue full: %d events left to the relay", len(event_ids))
                return
            process.unfinished += 1
            process.pending_events += len(event_ids)
        process.submissions.put(event_ids)

    def wait_idle(self, timeout: float) -> bool:
        """True once everything submitted so far (in this process) has been sent or given back
        to the relay."""
        process = self._process
        if process is None or process.pid != os.getpid():
            return True
        with process.idle:
            return process.idle.wait_for(lambda: process.unfinished == 0, timeout)

    def shutdown(self, timeout: float = SHUTDOWN_SECONDS) -> None:
        """Send what is queued (for at most `timeout`), then stop; the relay has the rest."""
        self.wait_idle(timeout)
        self.close()

    def close(self, timeout: float = 10.0) -> None:
        with _process_lock:
            process, self._process = self._process, None
        if process is None or process.pid != os.getpid() or process.thread is None:
            return
        process.submissions.put(None)
        process.thread.join(timeout)

    def _started(self) -> _ProcessPublisher:
        """This process's submissions and running thread, made here on first use (a forked
        worker never uses its parent's, whose thread did not come along)."""
        process = self._process
        if (
            process is not None
            and process.pid == os.getpid()
            and process.thread is not None
            and process.thread.is_alive()
        ):
            return process
        with _process_lock:
            process = self._process
            if process is None or process.pid != os.getpid():
                process = self._process = _ProcessPublisher()
            if process.thread is None or not process.thread.is_alive():
                process.thread = threading.Thread(
                    target=self._run, args=(process,), name="payportal-publisher", daemon=True
                )
                process.thread.start()
        return process

    def _run(self, process: _ProcessPublisher) -> None:
        submissions = process.submissions
        while True:
            first = submissions.get()
            if first is None:
                return
            event_ids, taken = list(first), 1
            lingering_until = time.monotonic() + self.linger
            # take what else waited while the last claim was out (a busy server sends full
            # batches), and while less than a batch is here, what comes within the linger: a
            # steady trickle of commits goes out as a few full calls instead of one call each
            while len(event_ids) < CLAIM_LIMIT:
                lingering = lingering_until - time.monotonic()
                try:
                    if len(event_ids) < SEND_BATCH_LIMIT and lingering > 0:
                        more = submissions.get(timeout=lingering)
                    else:
                        more = submissions.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    submissions.put(None)
                    break
                event_ids.extend(more)
                taken += 1
            try:
                self.publish(event_ids)
            except Exception:
                log.exception("publisher failed; %d events left to the relay", len(event_ids))
            finally:
                process.done(taken, len(event_ids))

    def publish(self, event_ids: Sequence[uuid.UUID]) -> PublishOutcome:
        """Claim, send and mark these events, CLAIM_LIMIT per transaction."""
        outcome = PublishOutcome()
        for start in range(0, len(event_ids), CLAIM_LIMIT):
            with self.session_factory() as session, session.begin():
                events = claim_events(session, event_ids[start : start + CLAIM_LIMIT])
                claimed = publish_claimed(session, self.sender, self.queue_url, events)
            outcome.add(claimed)
            if claimed.unreachable:
                # SQS is down: leave the rest to the relay instead of waiting on each claim
                break
        if outcome.failed:
            log.warning(
                "SQS refused %d events; the relay will retry them: %s",
                len(outcome.failed),
                next(iter(outcome.failed.values())),
            )
        return outcome


def check_sqs(registry) -> str:
    """Readiness: the configured queue answers GetQueueAttributes."""
    registry.sqs_readiness_client.get().get_queue_attributes(
        QueueUrl=registry.payportal_settings.sqs_queue_url, AttributeNames=["QueueArn"]
    )
    return "ok"
