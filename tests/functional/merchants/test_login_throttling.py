"""Login throttling: 5 failures per email in 15 minutes, then 429 with Retry-After."""

from __future__ import annotations

import datetime as dt
import threading

import bcrypt
import pytest
import sqlalchemy as sa
from merchant_http import PASSWORD, login, register, unique_email

from payportal.merchants import passwords
from payportal.merchants.models import LoginFailure

WRONG = "not the right passphrase"


def test_after_five_failures_even_the_right_password_gets_429(testapp):
    email = unique_email()
    register(testapp, email=email)
    for _ in range(5):
        login(testapp, email, WRONG, status=401)
    r = login(testapp, email, PASSWORD, status=429)
    assert r.json["error"]["type"] == "rate_limited"
    retry_after = int(r.headers["Retry-After"])
    assert 890 <= retry_after <= 900
    login(testapp, email.upper(), WRONG, status=429)  # the same email, spelled otherwise
    # another email is not affected
    other = unique_email()
    register(testapp, email=other)
    login(testapp, other)


def test_unknown_emails_are_throttled_the_same(testapp):
    email = unique_email("nobody")
    for _ in range(5):
        login(testapp, email, WRONG, status=401)
    assert login(testapp, email, WRONG, status=429).headers["Retry-After"]


def test_attempts_open_again_once_the_window_passes(testapp, dbsession):
    email = unique_email()
    register(testapp, email=email)
    for _ in range(5):
        login(testapp, email, WRONG, status=401)
    login(testapp, email, status=429)
    # move the first failure out of the window: exactly one more attempt is allowed
    first = dbsession.scalars(
        sa.select(LoginFailure).where(LoginFailure.email == email).order_by(LoginFailure.id)
    ).first()
    first.failed_at -= dt.timedelta(minutes=15)
    dbsession.flush()
    login(testapp, email)
    login(testapp, email, WRONG, status=401)
    login(testapp, email, status=429)


def test_failures_are_counted_in_postgresql(testapp, dbsession):
    email = unique_email()
    login(testapp, email, WRONG, status=401)
    login(testapp, email, WRONG, status=401)
    count = dbsession.scalar(
        sa.select(sa.func.count()).select_from(LoginFailure).where(LoginFailure.email == email)
    )
    assert count == 2


def test_concurrent_guesses_cannot_slip_past_the_limit(live_testapp):
    email = unique_email()
    register(live_testapp, email=email)
    barrier = threading.Barrier(12)
    statuses = []

    def guess():
        barrier.wait()
        statuses.append(login(live_testapp, email, WRONG, status="*").status_int)

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [401] * 5 + [429] * 7


@pytest.fixture
def bcrypt_checks(monkeypatch):
    """Count bcrypt verifications made while signing in."""
    calls = []
    real_checkpw = bcrypt.checkpw

    def counting_checkpw(password, hashed):
        calls.append(hashed)
        return real_checkpw(password, hashed)

    monkeypatch.setattr(passwords.bcrypt, "checkpw", counting_checkpw)
    return calls


def test_an_unknown_email_costs_one_bcrypt_verification_like_a_known_one(testapp, bcrypt_checks):
    email = unique_email()
    register(testapp, email=email)
    login(testapp, email, WRONG, status=401)
    login(testapp, unique_email("nobody"), WRONG, status=401)
    assert len(bcrypt_checks) == 2
    known, unknown = bcrypt_checks
    # the same cost factor, so both take as long
    assert known[:7] == unknown[:7]
