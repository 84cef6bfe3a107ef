"""Fixtures of the merchants tests: apps with other settings, and a real SMTP server."""

from __future__ import annotations

import socket
import threading

import pytest
import webtest
from aiosmtpd.controller import Controller

from payportal.db import TEST_CONNECTION_KEY


@pytest.fixture(scope="session")
def app_with(app_settings):
    """Build (once per set of overrides) an app that differs from the suite's in some settings."""
    from payportal import main

    apps = {}

    def build(**overrides):
        key = tuple(sorted(overrides.items()))
        if key not in apps:
            apps[key] = main({}, **{**app_settings, **overrides})
        return apps[key]

    yield build
    for app in apps.values():
        app.registry.dbengine.dispose()


def rolled_back_testapp(app, connection) -> webtest.TestApp:
    """webtest on `app`, inside the test's rolled-back transaction (as the testapp fixture)."""
    return webtest.TestApp(
        app, extra_environ={TEST_CONNECTION_KEY: connection, "HTTP_HOST": "localhost"}
    )


class Mailbox:
    """What the SMTP server received, for tests to wait on."""

    def __init__(self):
        self.messages: list = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        with self._arrived:
            self.messages.append(envelope)
            self._arrived.notify_all()
        return "250 Message accepted"

    def wait_for(self, recipient: str, timeout: float = 5.0):
        def find():
            return next((m for m in self.messages if recipient in m.rcpt_tos), None)

        with self._arrived:
            self._arrived.wait_for(lambda: find() is not None, timeout=timeout)
            return find()


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server on 127.0.0.1 (aiosmtpd); yields (smtp_url, mailbox)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield f"smtp://127.0.0.1:{port}", mailbox
    controller.stop()


@pytest.fixture
def smtp_testapp(app_with, smtp_server, connection):
    """The app with SMTP_URL pointing at the test SMTP server."""
    smtp_url, _mailbox = smtp_server
    return rolled_back_testapp(app_with(**{"payportal.smtp_url": smtp_url}), connection)
