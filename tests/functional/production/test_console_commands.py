"""The relay as operators run it: its sweep expires payments and purges old idempotency keys, it
folds the dashboard rollup, and PAYPORTAL_LOG_FORMAT=json makes its log one JSON object a line,
as the web process does."""

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
from payportal.portal.models import PaymentHourlyTotal, PaymentTotalDelta
from tests.factories import create_merchant, create_payment_row
from tests.processes import write_ini

ROOT = Path(__file__).resolve().parents[3]


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
        reference, merchant_id = overdue.reference, merchant.id
    ini = tmp_path / "relay.ini"
    write_ini(ini, database_url, log_level="INFO")
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
        deltas = session.scalar(sa.select(sa.func.count()).select_from(PaymentTotalDelta))
        totals = session.execute(
            sa.select(PaymentHourlyTotal.status, PaymentHourlyTotal.payments).where(
                PaymentHourlyTotal.merchant_id == merchant_id, PaymentHourlyTotal.payments != 0
            )
        ).all()
    assert status == "expired"
    assert keys == 0
    # the payment's creation and its expiry, folded into the totals
    assert deltas == 0
    assert totals == [("expired", 1)]
