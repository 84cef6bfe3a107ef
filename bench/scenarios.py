"""What each scenario needs: merchants and credentials, seeded payments, the requests to replay."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from loadgen import Request, Workload
from sqlalchemy.orm import Session

from payportal.db import load_all_models
from payportal.merchants import tokens
from payportal.merchants.models import ApiKey, Merchant, MerchantStatus, MerchantType
from payportal.merchants.passwords import hash_password
from payportal.merchants.policy import API_KEY_PREFIX, api_key_digest
from payportal.settings import SOURCES, Settings, load_settings

BENCH_DIR = Path(__file__).resolve().parent
FLOOR_APP = BENCH_DIR.parent.parent / "shared" / "bench" / "floor_app.py"
PRODUCTION_INI = BENCH_DIR.parent / "production.ini"
BIG_MERCHANT_EMAIL = "bench-merchant-1@example.com"  # the largest merchant of seed_payments.py
WEBHOOK_AMOUNT = 5000
REFERENCE_DIGITS = 24  # what follows 'pay_': the API's references are 20 to 36 such characters
LIST_PAGE = 20
DEEP_PAGE = 10_000
LIST_STATUS = "completed"
BENCH_RATE_LIMIT = 1_000_000

SEED_SQL = """
INSERT INTO payments (id, reference, merchant_id, amount, currency, status, gateway,
    customer_email, metadata, amount_refunded, platform_fee, gateway_fee, expires_at, version,
    created_at, updated_at, created_by, updated_by)
SELECT gen_random_uuid(), 'pay_' || :prefix || lpad(i::text, :digits, '0'), :merchant_id,
       :amount, 'USD', 'pending', CAST(:gateway AS payment_gateway),
       'customer' || (i % 5000) || '@example.com', '{}', 0, 0, 0,
       now() + interval '1 day', 1, now(), now(), 'bench', 'bench'
FROM generate_series(1, :count) AS i
"""


def production_environ(database_url: str) -> dict[str, str]:
    """This process's environment without any payportal setting, plus fresh random secrets:
    production.ini refuses to start without them."""
    env = {k: v for k, v in os.environ.items() if k not in {e for _i, e in SOURCES.values()}}
    env.update(
        DATABASE_URL=database_url,
        JWT_SECRET=secrets.token_urlsafe(48),
        JWT_REFRESH_SECRET=secrets.token_urlsafe(48),
        PASSWORD_PEPPER=secrets.token_urlsafe(48),
        ENCRYPTION_KEY="bench:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        WEBHOOK_SECRET=secrets.token_urlsafe(48),
        STRIPE_WEBHOOK_SECRET="whsec_" + secrets.token_urlsafe(48),
        PAYSTACK_SECRET_KEY="sk_live_" + secrets.token_urlsafe(48),
        FLUTTERWAVE_SECRET_HASH=secrets.token_urlsafe(48),
        PAYPORTAL_PUBLIC_URL="https://pay.bench.invalid",
    )
    # The load comes from one merchant, where production spreads it over many: its per-credential
    # limits stay on (their cost is measured) but high enough never to answer 429 here.
    for name in ("RATE_LIMIT", "RATE_LIMIT_INITIALIZE"):
        env[f"{name}_PER_SECOND"] = env[f"{name}_BURST"] = str(BENCH_RATE_LIMIT)
    return env


def app_settings(environ: dict[str, str]) -> Settings:
    from pyramid.paster import get_appsettings

    return load_settings(get_appsettings(str(PRODUCTION_INI), name="main"), environ)


@dataclass
class Tenant:
    merchant_id: uuid.UUID
    jwt: str
    api_key: str | None = None


def create_tenant(
    engine, settings: Settings, email: str, *, with_key: bool, password: str | None = None
) -> Tenant:
    """An active merchant (as an operator approves one), its access token and maybe an API key;
    `password` signs it in to the dashboard (else nobody knows its password)."""
    load_all_models()
    with Session(engine) as session, session.begin():
        merchant = Merchant(
            name="Bench merchant",
            email=email,
            password_hash=hash_password(
                password or secrets.token_urlsafe(24), pepper=settings.password_pepper, rounds=4
            ),
            merchant_type=MerchantType.BUSINESS,
            status=MerchantStatus.ACTIVE,
            created_by="bench",
        )
        session.add(merchant)
        session.flush()
        key = None
        if with_key:
            key = API_KEY_PREFIX + secrets.token_urlsafe(32)
            session.add(
                ApiKey(
                    merchant_id=merchant.id,
                    name="bench",
                    prefix=key[:11],
                    digest=api_key_digest(key),
                )
            )
        token, _claims = tokens.issue(
            settings, tokens.ACCESS, merchant.id, password_changed_at=merchant.password_changed_at
        )
        return Tenant(merchant.id, token, key)


def seed_pending(engine, merchant_id, prefix: str, count: int, gateway: str = "internal") -> list:
    """`count` pending payments with references pay_<prefix><zero-padded n>; returns them."""
    digits = REFERENCE_DIGITS - len(prefix)
    with engine.begin() as conn:
        conn.execute(
            sa.text(SEED_SQL),
            {
                "prefix": prefix,
                "digits": digits,
                "merchant_id": merchant_id,
                "amount": WEBHOOK_AMOUNT,
                "gateway": gateway,
                "count": count,
            },
        )
        conn.execute(sa.text("ANALYZE payments"))
    return [f"pay_{prefix}{str(i).zfill(digits)}" for i in range(1, count + 1)]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def initialize_workload(credential: str) -> Workload:
    """POST payments/initialize: every request a new pending payment (no Idempotency-Key)."""
    requests = [
        Request(
            "POST",
            "/api/v1/payments/initialize",
            body=json.dumps(
                {
                    "amount": 1000 + n,
                    "currency": "USD",
                    "customer_email": f"customer{n}@example.com",
                    "description": f"Order {n}",
                },
                separators=(",", ":"),
            ),
        )
        for n in range(1000)
    ]
    headers = {**bearer(credential), "Content-Type": "application/json"}
    return Workload(requests, headers)


def get_workload(references: list[str], token: str) -> Workload:
    return Workload([Request("GET", f"/api/v1/payments/{r}") for r in references], bearer(token))


def paystack_body(reference: str, n: int) -> bytes:
    event = {
        "event": "charge.success",
        "data": {
            "id": 900_000_000 + n,
            "reference": reference,
            "amount": WEBHOOK_AMOUNT,
            "currency": "USD",
            "fees": 75,
            "status": "success",
            "gateway_response": "Successful",
        },
    }
    return json.dumps(event, separators=(",", ":")).encode()


def webhook_workload(references: list[str], paystack_secret: str, first_id: int) -> Workload:
    """Signed charge.success deliveries, one per pending payment, each sent once."""
    requests = []
    for n, reference in enumerate(references, start=first_id):
        body = paystack_body(reference, n)
        signature = hmac.new(paystack_secret.encode(), body, hashlib.sha512).hexdigest()
        requests.append(
            Request(
                "POST",
                "/api/v1/webhooks/paystack",
                ("x-paystack-signature", signature),
                body.decode(),
            )
        )
    return Workload(requests, {"Content-Type": "application/json"})


def floor_post_workload(merchant_id: uuid.UUID) -> Workload:
    body = json.dumps(
        {
            "reference": "flr_{seq}",
            "merchant_id": str(merchant_id),
            "amount": 1050,
            "currency": "USD",
        }
    )
    return Workload([Request("POST", "/pay", body=body)], {"Content-Type": "application/json"})


def create_floor_table(environ: dict[str, str]) -> None:
    subprocess.run([sys.executable, str(FLOOR_APP), "--create"], env=environ, check=True)


def seed_floor(engine, count: int) -> list[str]:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO floor_payments (reference, merchant_id, amount, currency, status, "
                "metadata) SELECT 'flr_seed_' || i, gen_random_uuid(), 1050, 'USD', 'pending', "
                "'{}' FROM generate_series(1, :count) AS i"
            ),
            {"count": count},
        )
    return [f"flr_seed_{i}" for i in range(1, count + 1)]


def seeded_volume(engine) -> int:
    """Payments in the volume database (0 when it was never seeded)."""
    with engine.connect() as conn:
        has_table = conn.scalar(sa.text("SELECT to_regclass('payments') IS NOT NULL"))
        if not has_table:
            return 0
        return conn.scalar(sa.text("SELECT count(*) FROM payments"))


def sign_in_big_merchant(engine, settings: Settings, password: str) -> Tenant:
    """Give the seed's largest merchant a password (its seeded hash signs in nobody) and a token."""
    password_hash = hash_password(
        password, pepper=settings.password_pepper, rounds=settings.bcrypt_rounds
    )
    with engine.begin() as conn:
        row = conn.execute(
            sa.text(
                "UPDATE merchants SET password_hash = :hash, password_changed_at = now() "
                "WHERE email = :email RETURNING id, password_changed_at"
            ),
            {"hash": password_hash, "email": BIG_MERCHANT_EMAIL},
        ).one()
    token, _claims = tokens.issue(
        settings, tokens.ACCESS, row.id, password_changed_at=row.password_changed_at
    )
    return Tenant(row.id, token)


def deep_cursor(engine, merchant_id: uuid.UUID) -> str:
    """The next_cursor a client holds after walking to page DEEP_PAGE - 1 (status filter on)."""
    from payportal.pagination import encode_cursor

    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT created_at, id FROM payments WHERE merchant_id = :m AND status = :s "
                "ORDER BY created_at DESC, id DESC OFFSET :skip LIMIT 1"
            ),
            {"m": merchant_id, "s": LIST_STATUS, "skip": (DEEP_PAGE - 1) * LIST_PAGE - 1},
        ).one()
    return encode_cursor(row.created_at, row.id)


_CSRF_FIELD = re.compile(rb'name="csrf_token"\s+value="([^"]+)"')


def dashboard_cookie(port: int, email: str, password: str) -> str:
    """Sign in through the dashboard's login form; returns the Cookie header of the session."""
    import http.client
    from http.cookies import SimpleCookie
    from urllib.parse import urlencode

    def cookies_of(response) -> dict[str, str]:
        jar = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            jar.load(header)
        return {name: morsel.value for name, morsel in jar.items()}

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/dashboard/login")
    form = conn.getresponse()
    page = form.read()
    jar = cookies_of(form)
    match = _CSRF_FIELD.search(page)
    if form.status != 200 or match is None:
        raise RuntimeError(f"dashboard login form: HTTP {form.status}, no csrf_token field")
    body = urlencode(
        {"email": email, "password": password, "csrf_token": match.group(1).decode(), "next": ""}
    )
    conn.request(
        "POST",
        "/dashboard/login",
        body=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items()),
        },
    )
    signed_in = conn.getresponse()
    signed_in.read()
    conn.close()
    if signed_in.status != 303:
        raise RuntimeError(f"dashboard sign-in answered HTTP {signed_in.status}, not 303")
    jar.update(cookies_of(signed_in))
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def sample_event_data(reference: str) -> str:
    """An outbox event's data as payportal writes it (the payment as the API shows it)."""
    now = "2025-01-01T00:00:00.000000Z"
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "reference": reference,
            "amount": 1050,
            "amount_refunded": 0,
            "currency": "USD",
            "status": "pending",
            "gateway": "internal",
            "gateway_reference": None,
            "description": "Order 1",
            "customer_email": "customer1@example.com",
            "customer_name": None,
            "customer_phone": None,
            "metadata": {},
            "payment_method_id": None,
            "failure_code": None,
            "failure_reason": None,
            "fee": 0,
            "net_amount": None,
            "checkout_url": f"https://pay.bench.invalid/checkout/{reference}",
            "expires_at": now,
            "completed_at": None,
            "created_at": now,
            "updated_at": now,
        }
    )
