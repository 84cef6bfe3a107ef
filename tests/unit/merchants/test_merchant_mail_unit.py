"""Composing and delivering mail without SMTP: the file, the log, and production's caution."""

from __future__ import annotations

import logging
import socket
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from payportal.merchants import mail
from payportal.settings import load_settings
from tests.conftest import TEST_SETTINGS


def settings_with(tmp_path, **overrides):
    raw = {
        **TEST_SETTINGS,
        "sqlalchemy.url": "postgresql+psycopg://unused",
        "payportal.mail_dir": str(tmp_path),
        **overrides,
    }
    return load_settings(raw, {})


def reset_mail(settings):
    return mail.compose(
        settings,
        to="ada@example.com",
        subject="Reset your payportal password",
        template="password_reset.txt.jinja2",
        name="Ada",
        email="ada@example.com",
        reset_url="http://localhost/dashboard/reset-password?token=secret-token",
        valid_minutes=30,
    )


def test_compose_renders_the_template_with_headers(tmp_path):
    settings = settings_with(tmp_path, **{"payportal.mail_from": "Payportal <no-reply@pp.test>"})
    message = reset_mail(settings)
    assert message["From"] == "Payportal <no-reply@pp.test>"
    assert message["To"] == "ada@example.com"
    body = message.get_content()
    assert "Hello Ada," in body
    assert "http://localhost/dashboard/reset-password?token=secret-token" in body
    assert "30 minutes" in body


def test_without_smtp_development_saves_and_logs_the_message(tmp_path, caplog):
    settings = settings_with(tmp_path)
    with caplog.at_level(logging.INFO, logger="payportal.merchants.mail"):
        mail.deliver(settings, reset_mail(settings))
    [saved] = tmp_path.glob("*.eml")
    assert message_from_bytes(saved.read_bytes())["To"] == "ada@example.com"
    assert "secret-token" in caplog.text


def test_production_never_logs_the_body(tmp_path, caplog):
    settings = settings_with(tmp_path).model_copy(update={"environment": "production"})
    with caplog.at_level(logging.INFO, logger="payportal.merchants.mail"):
        mail.deliver(settings, reset_mail(settings))
    assert "SMTP_URL is not set" in caplog.text
    assert "secret-token" not in caplog.text


@pytest.mark.parametrize("url", ["http://mail.example.com", "smtp://", "mail.example.com:25"])
def test_a_malformed_smtp_url_is_refused(tmp_path, url):
    settings = settings_with(tmp_path)
    with pytest.raises(ValueError, match="SMTP_URL"):
        mail.deliver(settings.model_copy(update={"smtp_url": url}), reset_mail(settings))


def test_a_failed_delivery_is_logged_without_the_message(tmp_path, caplog):
    settings = settings_with(tmp_path, **{"payportal.smtp_url": "smtp://127.0.0.1:1"})
    with caplog.at_level(logging.ERROR, logger="payportal.merchants.mail"):
        mail._deliver_logged(settings, reset_mail(settings))
    assert "not delivered" in caplog.text
    assert "secret-token" not in caplog.text


class Recorder:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted"


def test_smtp_url_credentials_sign_in_to_the_server(tmp_path):
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"p@ss word")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    recorder = Recorder()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,  # the test server speaks plain SMTP on loopback
    )
    controller.start()
    try:
        settings = settings_with(
            tmp_path, **{"payportal.smtp_url": f"smtp://mailer:p%40ss%20word@127.0.0.1:{port}"}
        )
        mail.deliver(settings, reset_mail(settings))
    finally:
        controller.stop()
    assert logins == [(b"mailer", b"p@ss word")]
    [envelope] = recorder.envelopes
    assert envelope.rcpt_tos == ["ada@example.com"]
    assert not list(tmp_path.glob("*.eml"))  # sent, not saved
