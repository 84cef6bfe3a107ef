"""A serialization failure runs the request again (pyramid_retry, 3 attempts): the client sees
only the attempt that finished, and only that attempt's writes are committed."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from payportal.merchants.models import Operator

RETRIES = "/api/v1/probe-retries"


def operator_emails(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(Operator.email)).scalars())


def test_a_lost_serialization_race_is_run_again_and_commits_once(
    live_probe_testapp, committed_db, caplog
):
    caplog.set_level(logging.INFO, logger="payportal")
    response = live_probe_testapp.post_json(
        RETRIES,
        {"email": "retry@example.com", "failures": 2},
        headers={"X-Correlation-ID": "race-1"},
        status=201,
    )
    assert response.json == {"email": "retry@example.com", "attempt": 3}
    assert response.headers["X-Correlation-ID"] == "race-1"
    assert operator_emails(committed_db) == ["retry@example.com"]
    access = [r for r in caplog.records if r.name == "payportal.access"]
    assert [(r.status, r.retried, r.correlation_id) for r in access] == [
        (500, True, "race-1"),
        (500, True, "race-1"),
        (201, False, "race-1"),
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_last_attempt_failing_is_a_500_that_committed_nothing(
    live_probe_testapp, committed_db, caplog
):
    caplog.set_level(logging.INFO, logger="payportal")
    response = live_probe_testapp.post_json(
        RETRIES, {"email": "lost@example.com", "failures": 3}, status=500
    )
    assert response.json["error"]["code"] == "internal_error"
    assert operator_emails(committed_db) == []
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.correlation_id == response.headers["X-Correlation-ID"]
    assert "SerializationFailure" in caplog.text
