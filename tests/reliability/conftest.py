"""The reliability suite's switches and helpers: `--stress` picks the long variants, `race`
releases real threads on separate connections together, and `committed_merchant` commits."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
import webtest
from sqlalchemy.orm import Session

from tests.factories import access_token, bearer, create_merchant
from tests.reliability.servers import SqsServer


def pytest_addoption(parser):
    parser.addoption(
        "--stress",
        action="store_true",
        default=False,
        help="run the reliability scenarios at their full size (minutes, not seconds)",
    )


@pytest.fixture(scope="session")
def stress(request) -> bool:
    return request.config.getoption("--stress")


def sized(stress: bool, ci: int, full: int) -> int:
    """The CI figure, or the full one under --stress."""
    return full if stress else ci


def race(wsgi_app, calls, timeout: float = 120):
    """Run each `call(testapp)` in its own thread, released together by a barrier; returns the
    responses in order (a thread that raises fails the test)."""
    barrier = threading.Barrier(len(calls))
    responses = [None] * len(calls)
    errors = []

    def run(index, call):
        app = webtest.TestApp(wsgi_app, extra_environ={"HTTP_HOST": "localhost"})
        try:
            barrier.wait(timeout=30)
            responses[index] = call(app)
        except Exception as exc:  # surfaced below: a thread must not fail silently
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not errors, errors
    return responses


@dataclass(frozen=True)
class CommittedMerchant:
    merchant: object
    headers: dict[str, str]


@pytest.fixture
def committed_merchant(committed_db, settings) -> CommittedMerchant:
    """An active merchant committed to the database, with an access token's headers."""
    with Session(committed_db, expire_on_commit=False) as session, session.begin():
        merchant = create_merchant(session, settings)
    return CommittedMerchant(merchant, bearer(access_token(settings, merchant)))


@pytest.fixture
def sqs_server():
    """moto's SQS server on a port of its own, for one test (the test may stop and restart it)."""
    server = SqsServer()
    server.start()
    yield server
    server.stop()
