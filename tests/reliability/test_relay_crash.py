"""Scenario 7: real payportal-relay processes SIGKILLed at random moments while outbox events flow,
then one relay run to completion → every event received, 0 lost, re-sends keep their dedup id."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from payportal.events.models import OutboxEvent
from payportal.events.services import append_event
from tests.factories import create_merchant
from tests.processes import write_ini
from tests.reliability.conftest import sized
from tests.reliability.servers import AWS_ENV, BIN, ROOT, child_env

MERCHANTS = 4
# a relay is killed this long (at random) after it says it is relaying: inside its first batches
KILL_WITHIN_SECONDS = 0.6


class RelayProcess:
    """`payportal-relay <ini>` (the loop) in a process of its own, its log in a file."""

    def __init__(self, ini: Path, log_path: Path):
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(BIN / "payportal-relay"), str(ini)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env(PYTHONUNBUFFERED="1", **AWS_ENV),
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_relaying(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "relaying outbox events to" not in self.log():
            assert self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.02)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(10) == -signal.SIGKILL


def test_relays_killed_at_random_moments_lose_nothing_and_resend_with_the_same_dedup_id(
    tmp_path, database_url, committed_db, settings, sqs_server, stress
):
    total, kills = sized(stress, 200, 500), sized(stress, 8, 20)
    seed = random.randrange(2**32)
    # the seed is printed so that a failing run can be replayed with the same kill moments
    rng = random.Random(seed)
    queue_url = sqs_server.fifo_queue()
    ini = write_ini(
        tmp_path / "relay.ini",
        database_url,
        log_level="INFO",
        **{"payportal.sqs_queue_url": queue_url, "payportal.aws_endpoint_url": sqs_server.url},
    )
    with Session(committed_db, expire_on_commit=False) as session, session.begin():
        merchants = [create_merchant(session, settings).id for _ in range(MERCHANTS)]
        event_ids = {
            str(
                append_event(
                    session,
                    merchant_id=merchants[n % MERCHANTS],
                    type="payment.initiated",
                    data={"n": n},
                    payment_id=uuid.uuid4(),
                    correlation_id=f"crash-{n}",
                ).id
            )
            for n in range(total)
        }

    def unsent() -> int:
        with Session(committed_db) as session:
            return session.scalar(
                sa.select(sa.func.count()).where(OutboxEvent.published_at.is_(None))
            )

    drainer = sqs_server.drain(queue_url)
    killed_mid_flow = 0
    for n in range(kills):
        relay = RelayProcess(ini, tmp_path / f"relay-{n}.log")
        try:
            relay.wait_until_relaying()
            time.sleep(rng.uniform(0, KILL_WITHIN_SECONDS))
        finally:
            relay.kill()
        killed_mid_flow += unsent() > 0

    final = subprocess.run(
        [str(BIN / "payportal-relay"), str(ini), "--once"],
        cwd=ROOT,
        env=child_env(**AWS_ENV),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert final.returncode == 0, final.stderr
    assert unsent() == 0

    messages = drainer.finish(expect=total)
    dedup_ids = Counter(m["Attributes"]["MessageDeduplicationId"] for m in messages)
    # a re-send is the same event: its body and its dedup id both name the original event id
    assert all(
        json.loads(m["Body"])["id"] == m["Attributes"]["MessageDeduplicationId"] for m in messages
    )
    assert set(dedup_ids) == event_ids  # 0 lost, nothing that is not an event
    duplicates = sum(dedup_ids.values()) - len(dedup_ids)
    print(
        f"\nrelay crash (seed {seed}): {total} events, {kills} SIGKILLs "
        f"({killed_mid_flow} with events still unsent), {len(messages)} messages received, "
        f"{len(dedup_ids)} distinct dedup ids, {duplicates} re-sent duplicates, "
        f"{len(event_ids - set(dedup_ids))} lost"
    )
