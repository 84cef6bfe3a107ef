"""Forgotten passwords: 202 always, a single-use 30-minute link by mail, every session ended."""

from __future__ import annotations

import datetime as dt
import logging
import re
from email import message_from_bytes
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import rolled_back_testapp
from merchant_http import PASSWORD, login, refresh, register, unique_email, wait_until

from payportal.merchants.models import PasswordResetToken

FORGOT = "/api/v1/auth/forgot-password"
RESET = "/api/v1/auth/reset-password"
NEW_PASSWORD = "a brand new passphrase"
LINK = re.compile(r"https?://\S+/dashboard/reset-password\?token=(\S+)")


def mailed_token(mailbox, email: str) -> str:
    envelope = mailbox.wait_for(email)
    assert envelope is not None, f"no mail reached {email}"
    body = message_from_bytes(envelope.content).get_payload(decode=True).decode()
    return LINK.search(body).group(1)


def test_a_real_account_gets_a_link_that_resets_the_password(smtp_testapp, smtp_server):
    _url, mailbox = smtp_server
    app = smtp_testapp
    email = unique_email()
    tokens = register(app, email=email).json["tokens"]
    r = app.post_json(FORGOT, {"email": email.upper()}, status=202)
    assert r.body == b""
    token = mailed_token(mailbox, email)

    app.post_json(RESET, {"token": token, "new_password": NEW_PASSWORD}, status=204)
    login(app, email, PASSWORD, status=401)
    login(app, email, NEW_PASSWORD)
    # every earlier access and refresh token ended with the reset
    app.get("/api/v1/auth/profile", headers={"Authorization": f"Bearer {tokens['access_token']}"},
            status=401)  # fmt: skip
    refresh(app, tokens["refresh_token"], status=401)
    # the link works once
    r = app.post_json(RESET, {"token": token, "new_password": "yet another passphrase"}, status=422)
    assert r.json["error"]["code"] == "invalid_reset_token"
    login(app, email, NEW_PASSWORD)


def test_an_unknown_email_answers_the_same_and_gets_no_mail(smtp_testapp, smtp_server, dbsession):
    _url, mailbox = smtp_server
    email = unique_email("nobody")
    r = smtp_testapp.post_json(FORGOT, {"email": email}, status=202)
    assert r.body == b""
    assert mailbox.wait_for(email, timeout=0.5) is None
    assert dbsession.scalar(sa.select(sa.func.count()).select_from(PasswordResetToken)) == 0


def test_a_link_expires_after_30_minutes(smtp_testapp, smtp_server, dbsession):
    _url, mailbox = smtp_server
    email = unique_email()
    register(smtp_testapp, email=email)
    smtp_testapp.post_json(FORGOT, {"email": email}, status=202)
    token = mailed_token(mailbox, email)
    row = dbsession.scalars(sa.select(PasswordResetToken)).one()
    assert dt.timedelta(minutes=29) < row.expires_at - row.created_at <= dt.timedelta(minutes=30)
    row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    dbsession.flush()
    smtp_testapp.post_json(RESET, {"token": token, "new_password": NEW_PASSWORD}, status=422)
    login(smtp_testapp, email, PASSWORD)


def test_reset_validates_its_input(testapp):
    r = testapp.post_json(RESET, {"token": "made-up", "new_password": NEW_PASSWORD}, status=422)
    assert r.json["error"]["details"] == [{"field": "token", "message": "invalid, used or expired"}]
    testapp.post_json(RESET, {"token": "made-up", "new_password": "short"}, status=422)
    testapp.post_json(FORGOT, {"email": ""}, status=422)
    testapp.post_json(FORGOT, {"email": "a@example.com", "extra": 1}, status=422)


def test_repeated_requests_stop_mailing_after_three_open_links(smtp_testapp, smtp_server):
    _url, mailbox = smtp_server
    email = unique_email()
    register(smtp_testapp, email=email)
    for _ in range(5):
        smtp_testapp.post_json(FORGOT, {"email": email}, status=202)

    def received():
        return [m for m in mailbox.messages if email in m.rcpt_tos]

    assert wait_until(lambda: len(received()) >= 3)
    assert not wait_until(lambda: len(received()) > 3, timeout=0.5)


@pytest.fixture
def mail_dir(tmp_path) -> Path:
    return tmp_path / "mail"


def test_without_smtp_the_mail_goes_to_a_file_and_the_log(app_with, connection, mail_dir, caplog):
    app = rolled_back_testapp(app_with(**{"payportal.mail_dir": str(mail_dir)}), connection)
    email = unique_email()
    register(app, email=email)
    with caplog.at_level(logging.INFO, logger="payportal.merchants.mail"):
        app.post_json(FORGOT, {"email": email}, status=202)
        assert wait_until(lambda: any(email in r.getMessage() for r in caplog.records))
    [saved] = mail_dir.glob("*.eml")
    message = message_from_bytes(saved.read_bytes())
    assert message["To"] == email
    token = LINK.search(message.get_payload(decode=True).decode()).group(1)
    # a developer can follow the link from the log
    assert any(token in record.getMessage() for record in caplog.records)
    app.post_json(RESET, {"token": token, "new_password": NEW_PASSWORD}, status=204)
    login(app, email, NEW_PASSWORD)
