"""Sending outbox events to SQS: the client, the message format, marking, and the in-process
publisher thread that sends what a request committed without the request waiting for it."""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import boto3
import botocore.config
import botocore.exceptions
import sqlalchemy as sa

from payportal.events.models import OutboxEvent
from payportal.events.services import envelope, iso_utc
from payportal.metrics import PUBLISH_FAILURES

log = logging.getLogger(__name__)

SEND_BATCH_LIMIT = 10  # SendMessageBatch takes at most ten entries
CONNECT_TIMEOUT = 2
READ_TIMEOUT = 5
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 600.0
LAST_ERROR_CHARS = 1000
# submissions waiting in one lane; past this the relay sends the rest, memory stays flat
MAX_PENDING_SUBMISSIONS = 10_000
# how many ids a lane gathers from waiting submissions before sending
DRAIN_LIMIT = 100
# sender threads; a merchant's events always take the same one
LANES = 4
# how long a stopping server waits for queued events to go out
SHUTDOWN_SECONDS = 5.0


def sqs_client(settings, *, max_attempts: int = 3):
    """A boto3 SQS client with standard retries and short timeouts (a slow SQS never blocks)."""
    config = botocore.config.Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )
    return boto3.session.Session().client(
        "sqs",
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=config,
    )


def is_fifo(queue_url: str) -> bool:
    return queue_url.endswith(".fifo")


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def message_entry(event: OutboxEvent, *, fifo: bool) -> dict:
    """One SendMessageBatch entry: the envelope as body, routing facts as message attributes."""
    attributes = {
        "eventType": _string(event.type),
        "merchantId": _string(str(event.merchant_id)),
        "timestamp": _string(iso_utc(event.created_at)),
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
    session, client, queue_url: str, events: Sequence[OutboxEvent]
) -> PublishOutcome:
    """Send events already locked by the caller, ten at a time, recording each batch's result.

    Once SQS does not answer, the events not tried yet back off with the same error rather
    than each batch waiting out its own timeouts and retries.
    """
    total = PublishOutcome()
    for start in range(0, len(events), SEND_BATCH_LIMIT):
        batch = events[start : start + SEND_BATCH_LIMIT]
        outcome = send_batch(client, queue_url, batch)
        if outcome.unreachable:
            batch = events[start:]
            error = next(iter(outcome.failed.values()))
            outcome.failed.update({event.id: error for event in batch})
        record_outcome(session, outcome, {event.id: event.attempts for event in batch})
        total.add(outcome)
        if outcome.unreachable:
            break
    return total


def claim_events(session, event_ids: Iterable[uuid.UUID]) -> list[OutboxEvent]:
    """Lock these events if still unsent; a relay holding one already makes us skip it."""
    return list(
        session.execute(
            sa.select(OutboxEvent)
            .where(OutboxEvent.id.in_(list(event_ids)), OutboxEvent.published_at.is_(None))
            .order_by(OutboxEvent.created_at, OutboxEvent.id)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


class Publisher:
    """Background sender threads that send committed events as soon as their transaction commits.

    Each merchant's events go through one lane (thread), in commit order, so a FIFO queue keeps
    them in order; different merchants' events go out in parallel, since SQS answers slowly
    next to the time it takes us to prepare a batch. Best effort by design: whatever a lane
    cannot send (SQS down, lane full, process killed) stays unpublished in the outbox, where the
    relay finds it.
    """

    def __init__(self, session_factory, settings, *, client=None, lanes: int = LANES):
        self.session_factory = session_factory
        self.queue_url: str = settings.sqs_queue_url
        self._settings = settings
        self._client = client
        self._lanes = [queue.Queue(maxsize=MAX_PENDING_SUBMISSIONS) for _ in range(lanes)]
        self._threads: list[threading.Thread | None] = [None] * lanes
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._unfinished = 0

    def after_commit(self, committed: bool, events: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
        """The transaction's after-commit hook: runs in the request thread, so it only enqueues
        the (merchant_id, event_id) pairs the transaction appended."""
        if committed and events:
            self.submit(events)

    def submit(self, events: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> None:
        by_lane: dict[int, list[uuid.UUID]] = {}
        for merchant_id, event_id in events:
            by_lane.setdefault(merchant_id.int % len(self._lanes), []).append(event_id)
        for lane, event_ids in by_lane.items():
            self._ensure_started(lane)
            with self._idle:
                self._unfinished += 1
            try:
                self._lanes[lane].put_nowait(event_ids)
            except queue.Full:
                self._done()
                log.warning("publisher lane full: %d events left to the relay", len(event_ids))

    def wait_idle(self, timeout: float) -> bool:
        """True once everything submitted so far has been sent or given back to the relay."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout)

    def shutdown(self, timeout: float = SHUTDOWN_SECONDS) -> None:
        """Send what is queued (for at most `timeout`), then stop; the relay has the rest."""
        self.wait_idle(timeout)
        self.close()

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            threads, self._threads = self._threads, [None] * len(self._lanes)
        for lane, thread in enumerate(threads):
            if thread is not None:
                self._lanes[lane].put(None)
                thread.join(timeout)

    def _ensure_started(self, lane: int) -> None:
        # started on first use, so a server that forks workers starts them in each worker
        with self._lock:
            thread = self._threads[lane]
            if thread is None or not thread.is_alive():
                thread = threading.Thread(
                    target=self._run, args=(lane,), name=f"payportal-publisher-{lane}", daemon=True
                )
                self._threads[lane] = thread
                thread.start()

    def _done(self, count: int = 1) -> None:
        with self._idle:
            self._unfinished -= count
            self._idle.notify_all()

    def _run(self, lane: int) -> None:
        submissions = self._lanes[lane]
        while True:
            first = submissions.get()
            if first is None:
                return
            event_ids, taken = list(first), 1
            # drain what else is waiting, so a busy server sends full batches
            while len(event_ids) < DRAIN_LIMIT:
                try:
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
                self._done(taken)

    def _sqs(self):
        with self._lock:
            if self._client is None:
                self._client = sqs_client(self._settings)
            return self._client

    def publish(self, event_ids: Sequence[uuid.UUID]) -> PublishOutcome:
        client = self._sqs()
        outcome = PublishOutcome()
        for start in range(0, len(event_ids), SEND_BATCH_LIMIT):
            with self.session_factory() as session, session.begin():
                events = claim_events(session, event_ids[start : start + SEND_BATCH_LIMIT])
                batch = publish_claimed(session, client, self.queue_url, events)
            outcome.add(batch)
            if batch.unreachable:
                # SQS is down: leave the rest to the relay instead of waiting on each batch
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
    registry.sqs_readiness_client.get_queue_attributes(
        QueueUrl=registry.payportal_settings.sqs_queue_url, AttributeNames=["QueueArn"]
    )
    return "ok"
