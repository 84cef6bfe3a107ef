"""The publisher's sending plan and its concurrent SendMessageBatch calls, with a recording
stand-in for the SQS client: a merchant's events never travel in two calls at once and always in
commit order; a claim takes as few calls as its size allows; a dead SQS is not asked again."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace

import botocore.exceptions
import pytest

from payportal.events.publisher import BatchSender, PerProcess, plan_chains

SETTINGS = SimpleNamespace(aws_region="us-east-1", aws_endpoint_url="http://127.0.0.1:9")
QUEUE_URL = "http://127.0.0.1:9/000000000000/events.fifo"


def _events(merchants: list[int]) -> list[SimpleNamespace]:
    """One claimed row per entry, oldest first; the entry is the merchant's number."""
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ids = {n: uuid.UUID(int=n + 1) for n in set(merchants)}
    return [
        SimpleNamespace(
            id=uuid.uuid4(),
            merchant_id=ids[merchant],
            type="payment.initiated",
            payment_id=None,
            correlation_id=None,
            created_at=start + dt.timedelta(milliseconds=n),
            data={"n": n},
            attempts=0,
        )
        for n, merchant in enumerate(merchants)
    ]


@dataclass
class Call:
    groups: list[str]
    dedup_ids: list[str]
    started: float
    ended: float = 0.0


@dataclass
class RecordingClient:
    """Answers every SendMessageBatch after `delay`, or raises like an unreachable endpoint."""

    delay: float = 0.05
    dead: bool = False
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send_message_batch(self, QueueUrl, Entries):
        call = Call(
            [e["MessageGroupId"] for e in Entries],
            [e["MessageDeduplicationId"] for e in Entries],
            time.monotonic(),
        )
        with self.lock:
            self.calls.append(call)
        time.sleep(self.delay)
        call.ended = time.monotonic()
        if self.dead:
            raise botocore.exceptions.EndpointConnectionError(endpoint_url=QueueUrl)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def _answering_sender(client: RecordingClient, senders: int = 4) -> BatchSender:
    """A sender that has already had an answer from SQS (so it sends side by side at once)."""
    sender = BatchSender(SETTINGS, client=client, senders=senders)
    sender.send(QUEUE_URL, _events([999]))
    client.calls.clear()
    return sender


def _check_plan(events, chains: list[list[list]], senders: int) -> None:
    planned = [event for chain in chains for batch in chain for event in batch]
    assert sorted(e.id for e in planned) == sorted(e.id for e in events)  # each exactly once
    assert len(chains) <= senders
    assert all(1 <= len(batch) <= 10 for chain in chains for batch in chain)
    owner = {}
    for number, chain in enumerate(chains):
        flat = [event for batch in chain for event in batch]
        for event in flat:
            assert owner.setdefault(event.merchant_id, number) == number  # one chain each
        # a chain keeps the order it was given (oldest first)
        assert flat == sorted(flat, key=events.index)


def test_twenty_merchants_one_event_each_go_in_two_full_batches_side_by_side():
    events = _events(list(range(20)))
    chains = plan_chains(events, 4)
    _check_plan(events, chains, 4)
    assert [[len(batch) for batch in chain] for chain in chains] == [[10], [10]]


def test_a_full_claim_takes_ten_calls_in_rounds_of_at_most_four():
    events = _events([n % 10 for n in range(100)])
    chains = plan_chains(events, 4)
    _check_plan(events, chains, 4)
    assert sum(len(chain) for chain in chains) == 10
    assert max(len(chain) for chain in chains) == 3


def test_one_merchant_is_one_chain_in_order():
    events = _events([7] * 35)
    chains = plan_chains(events, 4)
    assert [[len(batch) for batch in chain] for chain in chains] == [[10, 10, 10, 5]]
    assert [e for batch in chains[0] for e in batch] == events


def test_random_claims_keep_every_rule():
    rng = random.Random(9)
    for _ in range(300):
        size = rng.randint(1, 100)
        events = _events([rng.randint(0, rng.randint(0, 30)) for _ in range(size)])
        senders = rng.randint(1, 6)
        chains = plan_chains(events, senders)
        _check_plan(events, chains, senders)
        # never more calls than one batch per merchant group of ten would take
        by_merchant = {}
        for event in events:
            by_merchant[event.merchant_id] = by_merchant.get(event.merchant_id, 0) + 1
        worst = sum(-(-count // 10) for count in by_merchant.values())
        assert sum(len(chain) for chain in chains) <= worst


def test_calls_overlap_but_never_for_the_same_merchant_and_keep_commit_order():
    client = RecordingClient(delay=0.05)
    sender = _answering_sender(client)
    events = _events([n % 12 for n in range(100)])

    outcome = sender.send(QUEUE_URL, events)

    assert sorted(outcome.sent) == sorted(e.id for e in events)
    assert outcome.failed == {} and not outcome.unreachable
    calls = client.calls
    assert len(calls) <= 12
    overlapping = [
        (a, b)
        for a, b in itertools.combinations(calls, 2)
        if a.started < b.ended and b.started < a.ended
    ]
    assert overlapping, "the calls went one after the other"
    for a, b in overlapping:
        assert not set(a.groups) & set(b.groups)
    # each merchant's events reached SQS in commit order
    sent_order = [d for call in sorted(calls, key=lambda c: c.started) for d in call.dedup_ids]
    for merchant in {e.merchant_id for e in events}:
        expected = [str(e.id) for e in events if e.merchant_id == merchant]
        assert [d for d in sent_order if d in set(expected)] == expected


def test_an_unreachable_sqs_stops_every_chain_after_its_call_in_flight():
    client = RecordingClient(delay=0.05)
    sender = _answering_sender(client)
    client.dead = True
    events = _events([n % 10 for n in range(100)])

    outcome = sender.send(QUEUE_URL, events)

    assert outcome.unreachable
    assert outcome.sent == []
    assert set(outcome.failed) == {e.id for e in events}
    assert all("EndpointConnectionError" in error for error in outcome.failed.values())
    # the four chains' first calls were already out; no call started after the first failure
    assert len(client.calls) <= 4
    first_failure = min(call.ended for call in client.calls)
    assert all(call.started < first_failure for call in client.calls)


def test_until_sqs_answers_one_call_goes_first_and_a_dead_sqs_is_asked_once():
    client = RecordingClient(delay=0.01, dead=True)
    sender = BatchSender(SETTINGS, client=client, senders=4)
    events = _events([n % 5 for n in range(35)])

    outcome = sender.send(QUEUE_URL, events)

    assert len(client.calls) == 1
    assert set(outcome.failed) == {e.id for e in events}

    client.dead = False
    outcome = sender.send(QUEUE_URL, events)
    assert sorted(outcome.sent) == sorted(e.id for e in events)
    # the oldest ten alone, then the other 25 side by side
    assert len(client.calls[1].dedup_ids) == 10
    assert len(client.calls) == 1 + 1 + 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_per_process_value_is_made_again_in_a_forked_child():
    made: list[int] = []

    def make():
        made.append(os.getpid())
        return object()

    value = PerProcess(make)
    parent_value = value.get()
    assert value.get() is parent_value
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running pytest's teardown
        try:
            child_value = value.get()
            ok = child_value is not parent_value and made[-1] == os.getpid()
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    os.close(read)
    assert value.get() is parent_value
