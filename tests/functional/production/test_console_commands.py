"""The relay as operators run it: its sweep expires payments and purges old idempotency keys,
and PAYPORTAL_LOG_FORMAT=json makes its log one JSON object a line, as the web process does."""

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from payportal.idempotency import IdempotencyKey
from payportal.payments.models import Payment
from tests.conftest import TEST_SETTINGS
from tests.factories import create_merchant, create_payment_row

ROOT = Path(__file__).resolve().parents[3]
LOGGING = """
[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = INFO
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = generic

[formatter_generic]
format = %(levelname)s %(name)s %(message)s
"""


def write_ini(path: Path, database_url: str) -> None:
    settings = {**TEST_SETTINGS, "sqlalchemy.url": database_url}
    lines = ["[app:main]", "use = egg:payportal"]
    lines += [f"{key} = {value.replace('%', '%%')}" for key, value in settings.items()]
    path.write_text("\n".join(lines) + "\n" + LOGGING.replace("%(", "%%("))


def test_relay_sweeps_and_logs_json(tmp_path, database_url, committed_db, settings):
    with Session(committed_db) as session, session.begin():
        merchant = create_merchant(session, settings)
        overdue = create_payment_row(session, settings, merchant, expires_in=-60)
        session.add(
            IdempotencyKey(
                merchant_id=merchant.id,
                key="old-key",
                request_method="POST",
                request_path="/api/v1/payments/initialize",
                fingerprint="0" * 64,
                response_status=201,
                response_body=b"{}",
                created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=25),
            )
        )
        reference = overdue.reference
    ini = tmp_path / "relay.ini"
    write_ini(ini, database_url)
    relay = Path(sys.executable).with_name("payportal-relay")
    result = subprocess.run(
        [str(relay), str(ini), "--once"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "PAYPORTAL_LOG_FORMAT": "json"},
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "the relay logged nothing"
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    with Session(committed_db) as session:
        status = session.scalar(sa.select(Payment.status).where(Payment.reference == reference))
        keys = session.scalar(sa.select(sa.func.count()).select_from(IdempotencyKey))
    assert status == "expired"
    assert keys == 0
