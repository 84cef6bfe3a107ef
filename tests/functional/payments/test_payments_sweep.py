"""The expiry sweep: due pending payments expire once, whatever else runs at the same time."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from payportal.events.models import OutboxEvent
from payportal.idempotency import IdempotencyKey
from payportal.payments.models import Payment, PaymentTransition
from payportal.payments.sweep import expire_due_payments, run_sweep
from tests.factories import create_merchant, create_payment

ROOT = Path(__file__).resolve().parents[3]


def _seed(engine, settings, *, due=0, later=0, due_but_completed=0):
    """Payments of one merchant; returns (merchant_id, {kind: [payment ids]})."""
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        merchant = create_merchant(session, settings)
        made = {"due": [], "later": [], "completed": []}
        for kind, count in (("due", due), ("later", later), ("completed", due_but_completed)):
            for _ in range(count):
                status = "completed" if kind == "completed" else "pending"
                payment = create_payment(session, settings, merchant, status=status)
                if kind != "later":
                    payment.expires_at = past
                made[kind].append(payment.id)
    return merchant.id, made


def _statuses(engine, ids) -> list[str]:
    with Session(engine) as session:
        return sorted(
            str(s) for s in session.scalars(sa.select(Payment.status).where(Payment.id.in_(ids)))
        )


def _expired_transitions(engine, ids) -> int:
    with Session(engine) as session:
        return session.scalar(
            sa.select(sa.func.count()).where(
                PaymentTransition.payment_id.in_(ids), PaymentTransition.to_status == "expired"
            )
        )


def test_due_pending_payments_expire_in_batches(committed_db, settings):
    _merchant_id, made = _seed(committed_db, settings, due=5, later=2, due_but_completed=1)
    expired = expire_due_payments(sessionmaker(bind=committed_db), settings, batch_size=2)
    assert expired == 5
    assert _statuses(committed_db, made["due"]) == ["expired"] * 5
    assert _statuses(committed_db, made["later"]) == ["pending"] * 2
    assert _statuses(committed_db, made["completed"]) == ["completed"]
    with Session(committed_db) as session:
        transition = session.scalars(
            sa.select(PaymentTransition).where(
                PaymentTransition.payment_id == made["due"][0],
                PaymentTransition.to_status == "expired",
            )
        ).one()
        assert (transition.source, transition.from_status) == ("system", "pending")
        events = session.scalar(
            sa.select(sa.func.count()).where(OutboxEvent.type == "payment.expired")
        )
        assert events == 5
        assert session.get(Payment, made["due"][0]).expired_at is not None
    assert expire_due_payments(sessionmaker(bind=committed_db), settings) == 0


def test_four_sweeps_at_once_expire_each_payment_exactly_once(committed_db, settings):
    _merchant_id, made = _seed(committed_db, settings, due=120)
    factory = sessionmaker(bind=committed_db)
    barrier = threading.Barrier(4)
    counts, errors = [], []

    def sweep():
        try:
            barrier.wait(timeout=30)
            counts.append(expire_due_payments(factory, settings, batch_size=7))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sum(counts) == 120
    assert _expired_transitions(committed_db, made["due"]) == 120
    assert _statuses(committed_db, made["due"]) == ["expired"] * 120


def test_a_payment_a_request_holds_is_skipped_not_waited_for(committed_db, settings):
    _merchant_id, made = _seed(committed_db, settings, due=3)
    held = made["due"][0]
    with committed_db.connect() as other:
        other.execute(sa.select(Payment.id).where(Payment.id == held).with_for_update())
        expired = expire_due_payments(sessionmaker(bind=committed_db), settings)
        assert expired == 2
        other.rollback()
    assert expire_due_payments(sessionmaker(bind=committed_db), settings) == 1
    assert _statuses(committed_db, made["due"]) == ["expired"] * 3


def test_the_sweep_purges_idempotency_keys_older_than_a_day(committed_db, settings):
    merchant_id, _made = _seed(committed_db, settings)
    now = dt.datetime.now(dt.UTC)
    with Session(committed_db) as session, session.begin():
        for key, age in (("old", dt.timedelta(hours=25)), ("fresh", dt.timedelta(hours=23))):
            session.add(
                IdempotencyKey(
                    merchant_id=merchant_id,
                    key=key,
                    request_method="POST",
                    request_path="/api/v1/payments/initialize",
                    fingerprint="0" * 64,
                    created_at=now - age,
                )
            )
    result = run_sweep(sessionmaker(bind=committed_db), settings)
    assert (result.expired_payments, result.purged_keys) == (0, 1)
    with Session(committed_db) as session:
        assert session.scalars(sa.select(IdempotencyKey.key)).all() == ["fresh"]


def test_payportal_sweep_command_runs_once(committed_db, settings, database_url):
    _merchant_id, made = _seed(committed_db, settings, due=2)
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "payportal.scripts.sweep", "development.ini"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "expired 2 payments, purged 0 idempotency keys" in done.stdout
    # every payment seeded (+1 each) and the two expiries (-1 and +1 each)
    assert "folded 6 rollup deltas" in done.stdout
    assert _statuses(committed_db, made["due"]) == ["expired"] * 2


def test_payportal_sweep_refuses_a_bad_batch_size():
    done = subprocess.run(
        [sys.executable, "-m", "payportal.scripts.sweep", "development.ini", "--batch-size", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--batch-size" in done.stderr
