"""payportal-admin rotate-encryption-key and expire-payment-methods, against real commits."""

import argparse
import base64
import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from payportal.crypto import DecryptionError, Keyring
from payportal.events.endpoints import endpoint_secret, secret_context
from payportal.events.models import OutboxEvent, WebhookEndpoint
from payportal.payment_methods.commands import (
    expire_payment_methods_command,
    rotate_encryption_key_command,
)
from payportal.payment_methods.models import PaymentMethod, PaymentMethodStatus
from payportal.payment_methods.services import open_details
from payportal.scripts import CommandEnv
from payportal.settings import parse_encryption_keys
from tests.conftest import ROOT, TEST_SETTINGS
from tests.factories import create_merchant, create_payment_method

KEY_B = ("b", bytes(range(32)))
KEY_B_SETTING = "b:" + base64.b64encode(KEY_B[1]).decode()
OLD_SETTING = TEST_SETTINGS["payportal.encryption_key"]  # the app seals under its key "t1"
OLD_KEYS = parse_encryption_keys(OLD_SETTING)
WEBHOOK_SECRET = "whsec_canary_0123456789abcdef"
SEALED = {
    "card": {"number": "4242424242424242"},
    "bank": {"account_number": "DE89370400440532013000"},
    "mobile": {"phone_number": "+233201234567"},
}


def seed(engine, settings, keyring) -> dict:
    """Under the app's key 't1': three sealed methods (one soft-deleted), a wallet, an endpoint."""
    with Session(engine, expire_on_commit=False) as session:
        merchant = create_merchant(session, settings)
        methods = {
            "card": create_payment_method(session, keyring, merchant),
            "bank": create_payment_method(
                session,
                keyring,
                merchant,
                name="bank",
                type="bank_account",
                bank_account={
                    "bank_name": "Deutsche Bank",
                    "account_number": "DE89370400440532013000",
                    "account_holder_name": "Acme GmbH",
                },
            ),
            "mobile": create_payment_method(
                session,
                keyring,
                merchant,
                name="momo",
                type="mobile_money",
                mobile_money={"provider": "mtn", "phone_number": "+233201234567"},
            ),
            "wallet": create_payment_method(
                session,
                keyring,
                merchant,
                name="pp",
                type="paypal",
                external_id="PP-1",
                external_provider="paypal",
            ),
        }
        methods["bank"].deleted_at = dt.datetime.now(dt.UTC)
        endpoint = WebhookEndpoint(
            id=uuid.uuid4(), merchant_id=merchant.id, url="https://example.com/hooks", events=["*"]
        )
        endpoint.sealed_secret = keyring.encrypt(WEBHOOK_SECRET, secret_context(endpoint.id))
        session.add(endpoint)
        session.commit()
    return {"methods": methods, "endpoint": endpoint, "merchant": merchant}


def reload(engine, model, row_id):
    with Session(engine) as session:
        row = session.get(model, row_id)
        session.expunge(row)
        return row


def assert_all_open_with_only(engine, seeded, keyring):
    for name, method in seeded["methods"].items():
        row = reload(engine, PaymentMethod, method.id)
        assert open_details(keyring, row) == SEALED.get(name, {})
        if row.sealed_details is not None:
            assert keyring.key_id_of(row.sealed_details) == "b"
    endpoint = reload(engine, WebhookEndpoint, seeded["endpoint"].id)
    assert endpoint_secret(keyring, endpoint) == WEBHOOK_SECRET


def command_env(engine, settings, keyring) -> CommandEnv:
    return CommandEnv(settings=settings, session_factory=sessionmaker(bind=engine), keyring=keyring)


def test_rotation_reseals_every_row_under_the_new_key(committed_db, settings, wsgi_app, capsys):
    seeded = seed(committed_db, settings, wsgi_app.registry.keyring)
    card = seeded["methods"]["card"]
    with pytest.raises(DecryptionError):  # before: the new key alone opens nothing
        open_details(Keyring([KEY_B]), reload(committed_db, PaymentMethod, card.id))

    env = command_env(committed_db, settings, Keyring([KEY_B, *OLD_KEYS]))
    assert rotate_encryption_key_command(env, argparse.Namespace(batch_size=2)) == 0
    out = capsys.readouterr().out
    assert "payment_methods.sealed_details: 3 re-sealed, 0 already under 'b', 0 failed" in out
    assert "webhook_endpoints.sealed_secret: 1 re-sealed, 0 already under 'b', 0 failed" in out
    assert_all_open_with_only(committed_db, seeded, Keyring([KEY_B]))

    # a second run finds nothing to do
    assert rotate_encryption_key_command(env, argparse.Namespace(batch_size=500)) == 0
    out = capsys.readouterr().out
    assert "payment_methods.sealed_details: 0 re-sealed, 3 already under 'b', 0 failed" in out


def test_a_row_no_key_opens_is_reported_and_left_alone(committed_db, settings, wsgi_app, capsys):
    seeded = seed(committed_db, settings, wsgi_app.registry.keyring)
    card_id = seeded["methods"]["card"].id
    lost = Keyring([("lost", os.urandom(32))])
    with committed_db.begin() as conn:
        orphan = lost.encrypt(
            '{"number": "4111111111111111"}', f"payment_methods.sealed_details:{card_id}"
        )
        conn.execute(
            sa.update(PaymentMethod)
            .where(PaymentMethod.id == card_id)
            .values(sealed_details=orphan)
        )
    env = command_env(committed_db, settings, Keyring([KEY_B, *OLD_KEYS]))
    assert rotate_encryption_key_command(env, argparse.Namespace(batch_size=1)) == 1
    out = capsys.readouterr().out
    assert "payment_methods.sealed_details: 2 re-sealed, 0 already under 'b', 1 failed" in out
    assert f"cannot open row {card_id}" in out
    assert reload(committed_db, PaymentMethod, card_id).sealed_details == orphan


def test_payportal_admin_rotates_from_the_command_line(
    committed_db, settings, wsgi_app, database_url
):
    seeded = seed(committed_db, settings, wsgi_app.registry.keyring)
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "payportal-admin"),
            "development.ini",
            "rotate-encryption-key",
            "--batch-size",
            "1",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": database_url,
            "ENCRYPTION_KEY": f"{KEY_B_SETTING},{OLD_SETTING}",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "payment_methods.sealed_details: 3 re-sealed" in result.stdout
    assert "webhook_endpoints.sealed_secret: 1 re-sealed" in result.stdout
    assert "4242424242424242" not in result.stdout + result.stderr
    assert_all_open_with_only(committed_db, seeded, Keyring([KEY_B]))


def test_expire_payment_methods_stores_what_readers_see(committed_db, settings, wsgi_app, capsys):
    seeded = seed(committed_db, settings, wsgi_app.registry.keyring)
    card = seeded["methods"]["card"]
    with committed_db.begin() as conn:
        conn.execute(
            sa.update(PaymentMethod)
            .where(PaymentMethod.id == card.id)
            .values(expires_at=sa.func.now() - dt.timedelta(days=1))
        )
    env = command_env(committed_db, settings, wsgi_app.registry.keyring)
    assert expire_payment_methods_command(env, argparse.Namespace(batch_size=1)) == 0
    assert "1 lapsed card(s) recorded as expired" in capsys.readouterr().out
    assert reload(committed_db, PaymentMethod, card.id).status is PaymentMethodStatus.EXPIRED
    with committed_db.connect() as conn:
        [event] = conn.scalars(
            sa.select(OutboxEvent.data).where(OutboxEvent.type == "payment_method.updated")
        ).all()
    assert (event["id"], event["status"]) == (str(card.id), "expired")
    assert expire_payment_methods_command(env, argparse.Namespace(batch_size=1)) == 0
    assert "0 lapsed card(s)" in capsys.readouterr().out
