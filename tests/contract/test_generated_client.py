"""The consumer's view: openapi-python-client turns the document into a typed client without a
single warning, and that client runs a whole integration against a live waitress server."""

from __future__ import annotations

import contextlib
import importlib
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import waitress
import webtest

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "payportal_client"


@pytest.fixture
def live_server(app_settings, committed_db):
    """The app behind waitress on a free port, committing for real; new accounts start active
    (as `make run` has it), simulation on."""
    from payportal import main

    app = main({}, **{**app_settings, "payportal.auto_activate": "true"})
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(timeout=5)
    app.registry.dbengine.dispose()


@pytest.fixture
def generated_client(wsgi_app, tmp_path, monkeypatch):
    document = webtest.TestApp(wsgi_app).get("/api/v1/openapi.json")
    spec = tmp_path / "openapi.json"
    spec.write_bytes(document.body)
    config = tmp_path / "generator.yaml"
    # no post hooks: formatting the generated code is not what this test is about
    config.write_text(f"post_hooks: []\npackage_name_override: {PACKAGE}\n")
    result = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--config",
            str(config),
            "--output-path",
            str(tmp_path / PACKAGE),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module(PACKAGE)
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def test_a_generated_client_runs_a_whole_integration(generated_client, live_server):
    with contextlib.ExitStack() as clients:
        run_integration(live_server + "/api/v1", clients)


def run_integration(base_url: str, clients: contextlib.ExitStack) -> None:
    """Register, sign in, make a key, take a payment twice with one key, settle, list, refund."""
    from payportal_client import AuthenticatedClient, Client
    from payportal_client.api.api_keys import post_api_keys
    from payportal_client.api.auth import post_auth_login, post_auth_register
    from payportal_client.api.gateway_webhooks import post_webhooks_simulate
    from payportal_client.api.payments import (
        get_payments,
        post_payments_initialize,
        post_payments_reference_refunds,
    )
    from payportal_client.models import (
        CreateApiKey,
        CreateRefund,
        InitializePayment,
        InitializePaymentCurrency,
        Login,
        MerchantType,
        PaymentStatus,
        RegisterMerchant,
        SimulateGatewayOutcome,
        SimulateGatewayOutcomeStatus,
    )

    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    password = "a long and private passphrase"
    public = clients.enter_context(Client(base_url=base_url, raise_on_unexpected_status=True))

    registered = post_auth_register.sync_detailed(
        client=public,
        body=RegisterMerchant(
            name="Ada's Books", email=email, password=password, merchant_type=MerchantType.BUSINESS
        ),
    )
    assert registered.status_code == 201
    assert registered.parsed.merchant.email == email

    signed_in = post_auth_login.sync(client=public, body=Login(email=email, password=password))
    dashboard = clients.enter_context(
        AuthenticatedClient(
            base_url=base_url, token=signed_in.tokens.access_token, raise_on_unexpected_status=True
        )
    )
    created_key = post_api_keys.sync(client=dashboard, body=CreateApiKey(name="shop backend"))
    assert created_key.key.startswith("sk_")
    shop = clients.enter_context(
        AuthenticatedClient(
            base_url=base_url, token=created_key.key, raise_on_unexpected_status=True
        )
    )

    order = InitializePayment(
        amount=1050, currency=InitializePaymentCurrency.USD, description="Order 1234"
    )
    first = post_payments_initialize.sync_detailed(
        client=shop, body=order, idempotency_key="order-1234"
    )
    retried = post_payments_initialize.sync_detailed(
        client=shop, body=order, idempotency_key="order-1234"
    )
    assert first.status_code == retried.status_code == 201
    payment = first.parsed.payment
    assert retried.parsed.payment.reference == payment.reference
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert payment.status == "pending"

    receipt = post_webhooks_simulate.sync(
        client=shop,
        body=SimulateGatewayOutcome(
            reference=payment.reference, status=SimulateGatewayOutcomeStatus.COMPLETED
        ),
    )
    assert receipt.outcome == "processed"
    assert receipt.payment.status == "completed"

    listed = get_payments.sync(client=shop, status=PaymentStatus.COMPLETED)
    assert [p.reference for p in listed.data] == [payment.reference]
    assert listed.has_more is False

    refunded = post_payments_reference_refunds.sync(
        payment.reference, client=shop, body=CreateRefund(amount=500), idempotency_key="rf-1"
    )
    assert refunded.refund.amount == 500
    assert refunded.payment.status == "partially_refunded"
    assert refunded.payment.amount_refunded == 500
