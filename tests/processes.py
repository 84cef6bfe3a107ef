"""Helpers for tests that run real processes: a free loopback port, and an .ini on the test
database that the app, pserve, the relay and the worker all read."""

from __future__ import annotations

import http.client
import socket
from pathlib import Path

from tests.conftest import TEST_SETTINGS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_ini(
    path: Path, database_url: str, port: int = 0, log_level: str | None = None, **overrides: str
) -> Path:
    """An .ini the app, pserve and the relay read: the test settings on `database_url`; with
    `log_level`, logging to stderr at that level."""
    settings = {**TEST_SETTINGS, "sqlalchemy.url": database_url, **overrides}
    lines = ["[app:main]", "use = egg:payportal"]
    lines += [f"{key} = {value.replace('%', '%%')}" for key, value in settings.items()]
    lines += [
        "",
        "[server:main]",
        "use = egg:payportal#waitress",
        f"listen = 127.0.0.1:{port}",
        "threads = 8",
        "shutdown_grace = 5",
    ]
    if log_level:
        lines += [
            "",
            "[loggers]\nkeys = root",
            "[handlers]\nkeys = stderr",
            "[formatters]\nkeys = plain",
            f"[logger_root]\nlevel = {log_level}\nhandlers = stderr",
            "[handler_stderr]\nclass = StreamHandler\nargs = (sys.stderr,)\nformatter = plain",
            "[formatter_plain]\nformat = %(asctime)s %(levelname)s [%(name)s] %(message)s",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def http_get(port: int, path: str, timeout: float = 10) -> tuple[int, bytes]:
    """GET 127.0.0.1:port/path on a fresh connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
