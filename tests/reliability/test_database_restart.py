"""Scenario 8: PostgreSQL restarted under a load of initializations on a waitress process → every
201 committed with one event, outage answers are quick 5xx envelopes, recovery by itself."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.orm import Session

from payportal.events.models import OutboxEvent
from payportal.payments.models import Payment
from tests.factories import access_token, bearer, create_merchant
from tests.processes import free_port, write_ini
from tests.reliability.conftest import sized
from tests.reliability.servers import ROOT, ThrowawayPostgres, start_server

CLIENTS = 3
OUTAGE_SECONDS = 3.0
POOL_TIMEOUT = 10  # the settings' default: no request may wait longer for a connection
RECOVERY_LIMIT = 10.0


@dataclass
class Answer:
    started: float
    ended: float
    status: int | None  # None: no answer within the client's timeout
    body: bytes


@pytest.fixture
def throwaway_postgres():
    # a short path of its own: the Unix socket lives in the data directory
    parent = Path(tempfile.mkdtemp(prefix="pp-restart-"))
    parent.chmod(0o755)  # as root, pgserver runs PostgreSQL as its own unprivileged user
    server = ThrowawayPostgres(parent / "data")
    server.create_database("payportal")
    url = server.url("payportal")
    config = Config(str(ROOT / "development.ini"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")
    yield server, url
    server.stop()
    shutil.rmtree(parent, ignore_errors=True)


def test_a_database_restart_under_load_commits_every_201_and_the_service_recovers_by_itself(
    tmp_path, throwaway_postgres, settings, stress
):
    postgres, url = throwaway_postgres
    duration = sized(stress, 15, 60)
    engine = sa.create_engine(url, pool_pre_ping=True)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        merchant = create_merchant(session, settings)
    headers = {**bearer(access_token(settings, merchant)), "Content-Type": "application/json"}
    port = free_port()
    ini = write_ini(
        tmp_path / "restart.ini", url, port, **{"payportal.db_pool_timeout": str(POOL_TIMEOUT)}
    )
    server = start_server(ini, port)

    answers: list[Answer] = []
    readiness: list[tuple[float, int | None]] = []
    stop = threading.Event()

    def load() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            body = json.dumps({"amount": 1000 + n, "currency": "USD"}).encode()
            started = time.monotonic()
            try:
                response = server.request(
                    "POST", "/api/v1/payments/initialize", body, headers, timeout=POOL_TIMEOUT + 20
                )
                status, content = response.status, response.body
            except OSError:
                status, content = None, b""
            answers.append(Answer(started, time.monotonic(), status, content))

    def probe() -> None:
        while not stop.is_set():
            try:
                status = server.request("GET", "/readyz", timeout=POOL_TIMEOUT + 20).status
            except OSError:
                status = None
            readiness.append((time.monotonic(), status))
            stop.wait(0.2)

    threads = [threading.Thread(target=load) for _ in range(CLIENTS)]
    threads.append(threading.Thread(target=probe))
    began = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        time.sleep(duration / 3)
        postgres.stop()
        down = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        restarting = time.monotonic()
        postgres.start()
        back = time.monotonic()
        time.sleep(max(0.0, began + duration - back))
    finally:
        stop.set()
        for thread in threads:
            thread.join(POOL_TIMEOUT + 30)
        server.stop()

    # every request answered, none waited beyond the pool timeout
    assert all(a.status is not None for a in answers), "a request got no answer"
    slowest = max(a.ended - a.started for a in answers)
    assert slowest < POOL_TIMEOUT + 2, f"slowest answer {slowest:.1f} s"

    created = [json.loads(a.body)["payment"]["reference"] for a in answers if a.status == 201]
    failed = [a for a in answers if a.status != 201]
    assert all(500 <= a.status < 600 for a in failed), sorted({a.status for a in failed})
    assert all(json.loads(a.body)["error"]["code"] for a in failed)  # the API's error envelope
    during_outage = [a for a in answers if a.started >= down and a.ended <= restarting]
    assert during_outage and all(a.status >= 500 for a in during_outage)

    # every 201 is a committed payment with exactly one payment.initiated event, and every
    # committed payment has its one event (a 5xx may still have committed: that is allowed)
    with Session(engine) as session:
        initiated = dict(
            session.execute(
                sa.select(Payment.reference, sa.func.count(OutboxEvent.id))
                .outerjoin(
                    OutboxEvent,
                    (OutboxEvent.payment_id == Payment.id)
                    & (OutboxEvent.type == "payment.initiated"),
                )
                .group_by(Payment.reference)
            ).all()
        )
    engine.dispose()
    assert len(created) == len(set(created))
    assert set(created) <= set(initiated), "a 201 for a payment that was not committed"
    assert set(initiated.values()) == {1}

    # the service answers 201 again by itself, soon after the database is back
    recovered_at = min(a.ended for a in answers if a.status == 201 and a.started >= back)
    recovery = recovered_at - back
    assert recovery < RECOVERY_LIMIT, f"first 201 {recovery:.1f} s after the database was back"
    # /readyz: 503 while the database is down, 200 again once it is back
    assert any(status == 503 for at, status in readiness if down <= at <= restarting)
    assert readiness[-1][1] == 200
    ready_again = min(at for at, status in readiness if at >= back and status == 200) - back
    print(
        f"\ndatabase restart: {len(answers)} requests in {duration} s, {len(created)} x 201, "
        f"{len(failed)} x 5xx ({sorted({a.status for a in failed})}), "
        f"{len(initiated)} payments committed, {len(initiated) - len(created)} committed "
        f"behind a 5xx; outage {restarting - down:.1f} s (+{back - restarting:.1f} s start-up), "
        f"slowest answer {slowest:.2f} s, first 201 {recovery:.2f} s after the database was back, "
        f"/readyz 200 again after {ready_again:.2f} s"
    )
