"""`make run`'s helper for real: the embedded PostgreSQL keeps its data between runs, and `serve`
migrates, seeds the demo accounts, serves on PORT and stops everything on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from payportal.scripts import devdb
from payportal.settings import SOURCES
from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[3]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local http
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until_ready(url: str, process: subprocess.Popen, seconds: float = 60) -> bytes:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "payportal-devdb exited before serving"
        try:
            status, body = get(url)
        except OSError:
            time.sleep(0.2)
            continue
        if status == 200:
            return body
    raise AssertionError(f"{url} never answered 200")


@pytest.fixture
def var_dir():
    # not pytest's tmp_path: a concurrent pytest run resets /tmp/pytest-of-<user> to mode 0700,
    # which locks out the unprivileged user pgserver runs PostgreSQL as when we are root
    path = Path(tempfile.mkdtemp(prefix="payportal-devdb-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_embedded_database_keeps_its_data_between_runs(var_dir, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    url, server = devdb.database_url(var_dir)
    try:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE ledger_marker (note text)"))
            conn.execute(sa.text("INSERT INTO ledger_marker VALUES ('first run')"))
    finally:
        server.cleanup()
    assert (var_dir / "postgres" / "PG_VERSION").exists()
    assert not (var_dir / "postgres" / "postmaster.pid").exists(), "server still running"

    url_again, server_again = devdb.database_url(var_dir)
    try:
        assert url_again.endswith("/payportal?host=" + str(var_dir / "postgres"))
        engine = sa.create_engine(url_again, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT note FROM ledger_marker")).scalar() == "first run"
    finally:
        server_again.cleanup()


def expire_soon(url: str) -> str:
    """A pending payment of the demo merchant already past its expiry; its reference."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    reference = "pay_devdbOverdue000000000001"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO payments (id, reference, merchant_id, amount, currency, status,"
                " gateway, metadata, amount_refunded, platform_fee, gateway_fee, expires_at,"
                " version, created_at, updated_at) SELECT gen_random_uuid(), :reference, id,"
                " 1050, 'USD', 'pending', 'internal', '{}', 0, 0, 0,"
                " now() - interval '1 minute', 1, now(), now() FROM merchants WHERE email = :email"
            ),
            {"reference": reference, "email": devdb.DEMO_MERCHANT[0]},
        )
    return reference


def status_of(url: str, reference: str) -> str:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        return conn.scalar(
            sa.text("SELECT status FROM payments WHERE reference = :r"), {"r": reference}
        )


def test_serve_migrates_seeds_serves_on_port_and_stops_on_sigterm(scratch_database):
    url = scratch_database()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {e for _i, e in SOURCES.values()}}
    # PYTHONPATH: this checkout's payportal, in devdb and in the pserve it starts
    env.update(DATABASE_URL=url, PORT=str(port), PYTHONWARNINGS="ignore", PYTHONPATH=str(ROOT))
    # the relay beside the server sweeps every second instead of every 30
    env["PAYPORTAL_SWEEP_INTERVAL"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "payportal.scripts.devdb", "serve", "development.ini"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        body = wait_until_ready(f"http://127.0.0.1:{port}/readyz", process)
        assert b'"status": "ready"' in body
        # the relay runs beside the server: an overdue payment expires without anyone asking
        reference = expire_soon(url)
        deadline = time.monotonic() + 30
        while status_of(url, reference) != "expired" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status_of(url, reference) == "expired"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0
    assert f"merchant dashboard: http://127.0.0.1:{port}/dashboard/" in output
    assert "demo@payportal.local / demo-merchant-password" in output
    assert "migrations at head" in output
    assert "beside it: payportal-relay and payportal-worker" in output
    assert "delivering webhooks" in output  # the worker's first line
    assert "worker stopped" in output and "relay stopped" in output  # SIGTERM reached both
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        emails = set(conn.execute(sa.text("SELECT email FROM merchants")).scalars())
        operators = set(conn.execute(sa.text("SELECT email FROM operators")).scalars())
    assert emails == {devdb.DEMO_MERCHANT[0]}
    assert operators == {devdb.DEMO_OPERATOR[0]}
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "pserve still listening"


def test_the_pgserver_uri_becomes_a_psycopg_url_for_the_database():
    uri = "postgresql://postgres:@/postgres?host=/srv/app/var/postgres"
    assert devdb.sqlalchemy_url(uri, "payportal") == (
        "postgresql+psycopg://postgres@/payportal?host=/srv/app/var/postgres"
    )


def test_port_moves_the_public_url_unless_it_is_set(monkeypatch):
    monkeypatch.delenv("PAYPORTAL_PUBLIC_URL", raising=False)
    assert devdb.serve_environ("db-url", "8080")["PAYPORTAL_PUBLIC_URL"] == "http://127.0.0.1:8080"
    assert "PAYPORTAL_PUBLIC_URL" not in devdb.serve_environ("db-url", None)
    monkeypatch.setenv("PAYPORTAL_PUBLIC_URL", "https://pay.example.com")
    assert (
        devdb.serve_environ("db-url", "8080")["PAYPORTAL_PUBLIC_URL"] == "https://pay.example.com"
    )
