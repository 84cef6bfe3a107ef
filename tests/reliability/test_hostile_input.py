"""Hostile input: mass assignment on every body-taking operation, SSRF through DNS, and
oversized or malformed bodies over real HTTP to a waitress process (4xx envelopes, bounded
memory, never a 5xx)."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass

import pytest
import webtest
from sqlalchemy.orm import Session

from payportal.db import TEST_CONNECTION_KEY
from payportal.events.delivery import post_webhook
from tests.factories import DEFAULT_PASSWORD, access_token, bearer, card_method_body
from tests.functional.test_card_canary import dump_every_table
from tests.functional.test_tenancy import OWNED_OBJECTS, World, concrete, entry_for
from tests.processes import free_port, write_ini
from tests.reliability.servers import start_server

PROTECTED_FIELDS = {
    "merchant_id": "00000000-0000-0000-0000-000000000001",
    "status": "completed",
    "amount_refunded": 0,
    "id": "00000000-0000-0000-0000-000000000002",
    "reference": "pay_mine",
    "version": 99,
}
NEW_PASSWORD = "a brand new passphrase 42"

# A valid body for every operation that takes one: the protected field is added to it, so a
# 422 comes from that field alone. An operation missing here fails the coverage test.
VALID_BODIES = {
    "POST /webhook-endpoints": {"url": "https://hooks.example.com/in", "events": ["*"]},
    "PATCH /webhook-endpoints/{id}": {"enabled": False},
    "POST /webhooks/simulate": {"reference": "{reference}", "status": "completed"},
    "POST /auth/change-password": {
        "current_password": DEFAULT_PASSWORD,
        "new_password": NEW_PASSWORD,
    },
    "POST /api-keys": {"name": "backend"},
    "POST /auth/forgot-password": {"email": "{email}"},
    "POST /auth/login": {"email": "{email}", "password": DEFAULT_PASSWORD},
    "POST /auth/logout": {"refresh_token": "not-a-token"},
    "POST /auth/refresh": {"refresh_token": "not-a-token"},
    "POST /auth/register": {
        "name": "Grace",
        "email": "grace@example.com",
        "password": NEW_PASSWORD,
        "merchant_type": "individual",
    },
    "POST /auth/reset-password": {"token": "not-a-token", "new_password": NEW_PASSWORD},
    "PATCH /auth/profile": {"name": "Renamed Ltd"},
    "POST /payment-methods": card_method_body(),
    "PUT /payment-methods/{id}": {"name": "Renamed card"},
    "PUT /payments/{reference}/status": {"status": "cancelled"},
    "POST /payments/{reference}/refunds": {"amount": 100},
    "POST /payments/initialize": {"amount": 1_000, "currency": "USD"},
}


def body_operations(app):
    return [op for op in app.registry.api_operations if op.body is not None]


def key(op) -> str:
    return f"{op.method} {op.path}"


@dataclass
class Target:
    url: str
    body: dict


def fill(value, merchant, params):
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        name = value[1:-1]
        return merchant.email if name == "email" else params[name]
    return value


def targets(app, world, merchant) -> dict[str, Target]:
    """Every body-taking operation on the merchant's own objects, with its valid body."""
    found = {}
    owned = {prefix: create(world, merchant) for prefix, create in OWNED_OBJECTS.items()}
    payment = owned["/payments"].params
    for op in body_operations(app):
        prefix = entry_for(op.path)
        params = owned[prefix].params if prefix else {}
        body = {
            k: fill(v, merchant, {**payment, **params}) for k, v in VALID_BODIES[key(op)].items()
        }
        found[key(op)] = Target(concrete(op.path, params), body)
    return found


def test_every_operation_with_a_body_has_a_valid_one_here(wsgi_app):
    missing = sorted(key(op) for op in body_operations(wsgi_app) if key(op) not in VALID_BODIES)
    assert not missing, f"add a valid body to VALID_BODIES for {missing}"


def test_protected_fields_in_any_body_are_422_and_change_nothing(
    testapp, wsgi_app, dbsession, connection, settings
):
    """Scenario 10: merchant_id, status, amount_refunded, id, reference and version in every
    create/update body the API takes -> 422 naming the field, and no row anywhere changes."""
    from tests.factories import create_merchant

    merchant = create_merchant(dbsession, settings)
    headers = bearer(access_token(settings, merchant))
    world = World(dbsession, settings, wsgi_app.registry.keyring)
    checked = 0
    for name, target in targets(wsgi_app, world, merchant).items():
        method = name.split()[0]
        model = next(op.body for op in body_operations(wsgi_app) if key(op) == name)
        for field, value in PROTECTED_FIELDS.items():
            if field in model.model_fields:
                continue  # the operation's own field (PUT status takes `status`)
            dbsession.expire_all()
            before = dump_every_table(connection)
            r = testapp.request(
                target.url,
                method=method,
                headers={**headers, "Content-Type": "application/json"},
                body=json.dumps({**target.body, field: value}).encode(),
                expect_errors=True,
            )
            assert r.status_int == 422, f"{name} with {field}: {r.status}"
            assert {"field": field, "message": "unknown field"} in r.json["error"]["details"], (
                name,
                field,
                r.json,
            )
            assert dump_every_table(connection) == before, f"{name} with {field} changed rows"
            checked += 1
    assert checked >= 90


@pytest.fixture
def strict_app(app_settings, connection):
    """The app as production runs it: merchant webhooks may not reach private addresses."""
    from payportal import main

    app = main({}, **{**app_settings, "payportal.webhook_allow_private": "false"})
    yield webtest.TestApp(
        app, extra_environ={TEST_CONNECTION_KEY: connection, "HTTP_HOST": "localhost"}
    )
    app.registry.dbengine.dispose()


@pytest.fixture
def private_dns(monkeypatch):
    """A resolver where intranet.example.com answers 10.20.30.40 and rebind.example.com
    answers a public address first, then 169.254.169.254 (DNS rebinding)."""
    real = socket.getaddrinfo
    answers = {"rebind.example.com": ["93.184.216.34", "169.254.169.254"]}

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "intranet.example.com":
            address = "10.20.30.40"
        elif host in answers:
            address = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
        else:
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_hostname_resolving_to_a_private_address_is_refused(
    strict_app, dbsession, settings, private_dns
):
    """Scenario 14 (the literal addresses are in tests/functional/events/
    test_webhook_endpoints.py): a name is judged by what it resolves to, at creation and again
    right before each delivery connects."""
    from tests.factories import create_merchant

    merchant = create_merchant(dbsession, settings)
    headers = bearer(access_token(settings, merchant))
    api = "/api/v1/webhook-endpoints"
    refused = strict_app.post_json(
        api,
        {"url": "https://intranet.example.com/hook", "events": ["*"]},
        headers=headers,
        status=422,
    )
    assert refused.json["error"]["code"] == "invalid_url"
    created = strict_app.post_json(
        api, {"url": "https://rebind.example.com/hook", "events": ["*"]}, headers=headers
    )
    assert created.status_int == 201
    attempt = post_webhook("https://rebind.example.com/hook", b"{}", {}, allow_private=False)
    assert attempt.status_code is None and not attempt.retryable
    assert "169.254.169.254" in attempt.error


# -- scenario 15: oversized and malformed bodies over real HTTP ------------------------------

MIB = 1024 * 1024
DEPTH = 100_000
MALFORMED = {
    "10 MiB string": b'{"description": "' + b"a" * (10 * MIB) + b'"}',
    "deep nesting": b'{"metadata": ' + b'{"a": ' * DEPTH + b"1" + b"}" * DEPTH + b"}",
    "deep array": b"[" * DEPTH + b"]" * DEPTH,
    "invalid utf-8": b'{"amount": 100, "currency": "USD", "description": "\xff\xfe\xc3"}',
    "huge integer": b'{"amount": 1' + b"0" * 5_000 + b', "currency": "USD"}',
    "big integer": b'{"amount": 99999999999999999999999, "currency": "USD"}',
    "huge float": b'{"amount": 1e400, "currency": "USD"}',
    "NaN": b'{"amount": NaN, "currency": "USD"}',
    "Infinity": b'{"amount": Infinity, "currency": "USD"}',
    "-Infinity in metadata": b'{"amount": 1, "currency": "USD", "metadata": {"x": -Infinity}}',
    "negative amount": b'{"amount": -100, "currency": "USD"}',
    "zero amount": b'{"amount": 0, "currency": "USD"}',
    "10,000-item metadata": json.dumps(
        {"amount": 100, "currency": "USD", "metadata": {f"k{i}": "v" for i in range(10_000)}}
    ).encode(),
    "10,000-item list": json.dumps({"events": ["payment.completed"] * 10_000}).encode(),
    "not json": b"amount=100&currency=USD",
    "truncated json": b'{"amount": 100, "curr',
    "top-level array": b"[1, 2, 3]",
    "empty body": b"",
    "null bytes": b'{"description": "\x00\x00", "amount": 1, "currency": "USD"}',
}


@pytest.fixture
def waitress_app(tmp_path, database_url, committed_db, settings, wsgi_app):
    """A waitress process on the test database, a committed merchant and its objects."""
    from tests.factories import create_merchant

    port = free_port()
    server = start_server(write_ini(tmp_path / "hostile.ini", database_url, port), port)
    with Session(committed_db, expire_on_commit=False) as session, session.begin():
        merchant = create_merchant(session, settings)
        world = World(session, settings, wsgi_app.registry.keyring)
        found = targets(wsgi_app, world, merchant)
    yield server, bearer(access_token(settings, merchant)), found
    server.stop()


def test_oversized_and_malformed_bodies_are_4xx_envelopes_with_bounded_memory(waitress_app):
    """Scenario 15: every malformed body on every body-taking operation, gateway webhooks
    included -> a 4xx with the error envelope, never a 5xx; the server's peak memory stays
    far below what buffering the bodies would take."""
    server, headers, found = waitress_app
    urls = {name: t.url for name, t in found.items()}
    for gateway in ("payment", "stripe", "paystack", "flutterwave"):
        urls[f"POST /webhooks/{gateway}"] = f"/api/v1/webhooks/{gateway}"
    baseline = server.rss_kib()
    answers = {}
    for name, url in urls.items():
        method = name.split()[0]
        for label, raw in MALFORMED.items():
            r = server.request(method, url, raw, {**headers, "Content-Type": "application/json"})
            answers[(name, label)] = r.status
            assert 400 <= r.status < 500, f"{name} with {label}: {r.status} {r.body[:300]!r}"
            error = r.json["error"]
            assert error["type"] and error["correlation_id"], (name, label)
            assert r.headers["Content-Type"].startswith("application/json")
    assert len(answers) == len(urls) * len(MALFORMED)
    # each 10 MiB body went through the server len(urls) times; its peak grew by far less
    growth_mib = (server.rss_kib("VmHWM") - baseline) / 1024
    assert growth_mib < 64, f"peak memory grew by {growth_mib:.0f} MiB"
    assert "Traceback" not in server.log()
