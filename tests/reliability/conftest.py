"""The reliability suite's switches and helpers: `--stress` picks the long variants
and `committed_merchant` commits (the threads helper `race` lives in tests/concurrency.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
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
