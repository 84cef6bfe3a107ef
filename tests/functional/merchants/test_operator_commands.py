"""payportal-admin operator commands against real commits: operators and merchant status."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from payportal.events.models import OutboxEvent
from payportal.merchants import commands, services
from payportal.merchants.models import AuditEntry, Merchant, Operator
from payportal.scripts import CommandEnv
from payportal.scripts.admin import build_parser
from tests.conftest import ROOT, TEST_SETTINGS
from tests.factories import create_merchant

OPERATOR_PASSWORD = "operator passphrase 1"


def payportal_admin(database_url: str, *args: str, **extra_env: str):
    """Run the installed console command as an operator would."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "payportal-admin"), "development.ini", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": database_url,
            "PASSWORD_PEPPER": TEST_SETTINGS["payportal.password_pepper"],
            "BCRYPT_ROUNDS": "4",
            **extra_env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run_in_process(engine, settings, *args: str) -> int:
    """The same command, in this process (no logging set-up), on the committed database."""
    parsed = build_parser().parse_args(["development.ini", *args])
    env = CommandEnv(settings=settings, session_factory=sessionmaker(bind=engine), keyring=None)
    return parsed.func(env, parsed)


def committed_merchant(engine, settings, **fields) -> Merchant:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        return create_merchant(session, settings, **fields)


def test_create_operator_reads_the_password_from_the_environment(
    committed_db, settings, database_url
):
    result = payportal_admin(
        database_url,
        "create-operator",
        "Ops@Example.com",
        "--name",
        "Grace",
        PAYPORTAL_OPERATOR_PASSWORD=OPERATOR_PASSWORD,
    )
    assert result.returncode == 0, result.stderr
    assert "operator ops@example.com created" in result.stdout
    assert OPERATOR_PASSWORD not in result.stdout + result.stderr
    with Session(committed_db) as session:
        operator = services.authenticate_operator(
            session, settings, "ops@example.com", OPERATOR_PASSWORD
        )
        assert operator.name == "Grace"
        assert OPERATOR_PASSWORD not in operator.password_hash

    again = payportal_admin(
        database_url,
        "create-operator",
        "ops@example.com",
        PAYPORTAL_OPERATOR_PASSWORD=OPERATOR_PASSWORD,
    )
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_create_operator_prompts_twice_without_the_variable(
    committed_db, settings, monkeypatch, capsys
):
    monkeypatch.delenv(commands.PASSWORD_ENV, raising=False)
    answers = iter([OPERATOR_PASSWORD, "a different one entirely"])
    monkeypatch.setattr(commands.getpass, "getpass", lambda prompt: next(answers))
    assert run_in_process(committed_db, settings, "create-operator", "a@example.com") == 1
    assert "differ" in capsys.readouterr().err

    answers = iter([OPERATOR_PASSWORD, OPERATOR_PASSWORD])
    assert run_in_process(committed_db, settings, "create-operator", "a@example.com") == 0
    answers = iter(["too short", "too short"])
    assert run_in_process(committed_db, settings, "create-operator", "b@example.com") == 1
    with Session(committed_db) as session:
        assert session.scalars(sa.select(Operator.email)).all() == ["a@example.com"]


def test_approve_merchant_activates_with_audit_and_event(committed_db, settings, database_url):
    merchant = committed_merchant(committed_db, settings, status="pending")
    result = payportal_admin(database_url, "approve-merchant", merchant.email.upper())
    assert result.returncode == 0, result.stderr
    assert "pending -> active" in result.stdout
    with Session(committed_db) as session:
        assert session.get(Merchant, merchant.id).status == "active"
        entry = session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "merchant.status_changed")
        ).one()
        assert (entry.from_value, entry.to_value) == ("pending", "active")
        assert entry.actor.startswith("operator-cli")
        event = session.scalars(sa.select(OutboxEvent)).one()
        assert event.type == "merchant.status_changed"
        assert event.merchant_id == merchant.id
        assert event.data["status"] == "active"
        assert event.data["previous_status"] == "pending"
        assert "password_hash" not in event.data

    # approving again changes nothing and records nothing
    assert run_in_process(committed_db, settings, "approve-merchant", merchant.email) == 0
    with Session(committed_db) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent)) == 1


@pytest.mark.parametrize(
    ("command", "status"),
    [("suspend-merchant", "suspended"), ("deactivate-merchant", "inactive")],
)
def test_suspend_and_deactivate_need_a_reason(committed_db, settings, command, status):
    merchant = committed_merchant(committed_db, settings)
    with pytest.raises(SystemExit) as exit_info:
        run_in_process(committed_db, settings, command, merchant.email)
    assert exit_info.value.code == 2  # argparse: --reason is required
    assert (
        run_in_process(committed_db, settings, command, merchant.email, "--reason", "chargebacks")
        == 0
    )
    with Session(committed_db) as session:
        assert session.get(Merchant, merchant.id).status == status
        entry = session.scalars(sa.select(AuditEntry)).one()
        assert (entry.from_value, entry.to_value, entry.reason) == ("active", status, "chargebacks")
        assert session.scalars(sa.select(OutboxEvent.type)).all() == ["merchant.status_changed"]


def test_an_unknown_merchant_is_an_error(committed_db, settings, capsys):
    assert run_in_process(committed_db, settings, "approve-merchant", "nobody@example.com") == 1
    assert "no merchant with email nobody@example.com" in capsys.readouterr().err


def test_list_merchants_filters_by_status(committed_db, settings, capsys):
    pending = committed_merchant(committed_db, settings, status="pending")
    active = committed_merchant(committed_db, settings, status="active")
    assert run_in_process(committed_db, settings, "list-merchants", "--status", "pending") == 0
    out = capsys.readouterr().out
    assert pending.email in out
    assert active.email not in out
