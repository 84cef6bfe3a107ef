"""The relay: sends every event the in-process publisher did not (SQS was down, the process
died), backing off per event; several relays share the outbox through FOR UPDATE SKIP LOCKED.
It also runs periodic tasks: payportal-relay gives it the payment expiry sweep (every
sweep_interval seconds) and the fold of the dashboard rollup (every rollup_fold_interval)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import sqlalchemy as sa

from payportal.events.models import OutboxEvent
from payportal.events.publisher import (
    CLAIMED_COLUMNS,
    BatchSender,
    PublishOutcome,
    publish_claimed,
)

log = logging.getLogger(__name__)

CLAIM_BATCH = 100
POLL_SECONDS = 1.0
# a relay sends its claim's batches one after the other (more relays send more at once): it is
# the catch-up path, and an SQS that just came back is not met with a burst from every relay
RELAY_SENDERS = 1


def claim_due_events(session, limit: int) -> list:
    """Lock the oldest unsent events whose time has come; rows another relay holds are skipped."""
    return list(
        session.execute(
            sa.select(*CLAIMED_COLUMNS)
            .where(OutboxEvent.published_at.is_(None), OutboxEvent.next_attempt_at <= sa.func.now())
            .order_by(OutboxEvent.created_at, OutboxEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def relay_due_events(
    session_factory, sender: BatchSender, queue_url: str, *, limit: int = CLAIM_BATCH
) -> tuple[int, PublishOutcome]:
    """One batch in one transaction: claim, send, mark. Returns (claimed, outcome)."""
    with session_factory() as session, session.begin():
        events = claim_due_events(session, limit)
        if not events:
            return 0, PublishOutcome()
        return len(events), publish_claimed(session, sender, queue_url, events)


class Every:
    """A task run at most once per `seconds` by whoever calls it; its failure is logged, and it
    runs again when next due."""

    def __init__(self, seconds: float, task: Callable[[], object], name: str):
        self.seconds = seconds
        self.task = task
        self.name = name
        self._due = time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() < self._due:
            return
        self._due = time.monotonic() + self.seconds
        try:
            self.task()
        except Exception:
            log.exception("%s failed; trying again in %g s", self.name, self.seconds)


class Relay:
    """One `step()` per loop turn; `sweep(session_factory, settings)` runs every
    settings.sweep_interval seconds and `fold(session_factory)` every
    settings.rollup_fold_interval seconds."""

    def __init__(
        self,
        session_factory,
        settings,
        *,
        client=None,
        batch_size: int = CLAIM_BATCH,
        senders: int = RELAY_SENDERS,
        sweep: Callable | None = None,
        fold: Callable | None = None,
    ):
        self.session_factory = session_factory
        self.settings = settings
        self.queue_url: str | None = settings.sqs_queue_url
        self.batch_size = batch_size
        # its client (boto3) is made on the first send: a relay without a queue never loads it
        self.sender = BatchSender(settings, client=client, senders=senders)
        self.periodic = []
        if sweep is not None:
            self.periodic.append(
                Every(
                    settings.sweep_interval,
                    lambda: sweep(session_factory, settings),
                    "payment expiry sweep",
                )
            )
        if fold is not None:
            self.periodic.append(
                Every(settings.rollup_fold_interval, lambda: fold(session_factory), "rollup fold")
            )
        self.sent = 0
        self.failed = 0

    def announce(self) -> None:
        """Say once, at start, what this relay will do."""
        if self.queue_url is None:
            log.warning(
                "SQS_QUEUE_URL is not set: events are recorded in the outbox (GET /api/v1/events) "
                "and nothing is published"
            )
        else:
            log.info("relaying outbox events to %s", self.queue_url)

    def step(self) -> bool:
        """Run the periodic tasks that are due, then relay one batch; True when a full batch
        went out."""
        for task in self.periodic:
            task()
        if self.queue_url is None:
            return False
        claimed, outcome = relay_due_events(
            self.session_factory, self.sender, self.queue_url, limit=self.batch_size
        )
        self.sent += len(outcome.sent)
        self.failed += len(outcome.failed)
        if outcome.failed:
            log.warning(
                "%d of %d events not published, retried later: %s",
                len(outcome.failed),
                claimed,
                next(iter(outcome.failed.values())),
            )
        # SQS down: wait before the next batch
        return claimed == self.batch_size and not outcome.unreachable
