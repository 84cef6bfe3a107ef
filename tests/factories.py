"""Small factories for test data: rows written on the test's session, credentials to use them."""

from __future__ import annotations

import itertools
import secrets

from payportal.merchants import tokens
from payportal.merchants.models import ApiKey, Merchant, MerchantStatus, MerchantType
from payportal.merchants.passwords import hash_password
from payportal.merchants.policy import API_KEY_PREFIX, api_key_digest

DEFAULT_PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)


def create_merchant(
    session,
    settings,
    *,
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    status: str = "active",
    merchant_type: str = "business",
    **fields,
) -> Merchant:
    n = next(_counter)
    merchant = Merchant(
        name=fields.pop("name", f"Merchant {n}"),
        email=(email or f"merchant{n}-{secrets.token_hex(3)}@example.com").lower(),
        password_hash=hash_password(
            password, pepper=settings.password_pepper, rounds=settings.bcrypt_rounds
        ),
        merchant_type=MerchantType(merchant_type),
        status=MerchantStatus(status),
        **fields,
    )
    session.add(merchant)
    session.flush()
    return merchant


def access_token(settings, merchant: Merchant) -> str:
    token, _claims = tokens.issue(
        settings, tokens.ACCESS, merchant.id, password_changed_at=merchant.password_changed_at
    )
    return token


def create_api_key(session, merchant: Merchant, name: str = "test key") -> tuple[ApiKey, str]:
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(merchant_id=merchant.id, name=name, prefix=key[:11], digest=api_key_digest(key))
    session.add(row)
    session.flush()
    return row, key


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def merchant_headers(session, settings, **merchant_fields) -> tuple[Merchant, dict[str, str]]:
    """A new merchant and the Authorization header of a fresh access token for it."""
    merchant = create_merchant(session, settings, **merchant_fields)
    return merchant, bearer(access_token(settings, merchant))


def create_payment(session, settings, merchant, *, status: str = "pending", **fields):
    """A payment of `merchant` initialized by the service, then walked to `status` through the
    state machine (refunded states by real refunds: partially_refunded refunds half)."""
    from payportal.payments.schemas import InitializePayment
    from payportal.payments.services import initialize_payment, refund_payment
    from payportal.payments.state import apply_transition

    data = InitializePayment(**{"amount": 10_000, "currency": "USD", **fields})
    payment = initialize_payment(
        session, settings, merchant.id, data, actor="test", correlation_id=None
    )
    settled = {"completed", "partially_refunded", "refunded", "disputed"}
    if status != "pending":
        first = "completed" if status in settled else status
        apply_transition(session, payment, first, source="api", settings=settings)
    if status in {"partially_refunded", "refunded"}:
        amount = payment.amount // 2 if status == "partially_refunded" else None
        refund_payment(
            session,
            settings,
            payment,
            amount=amount,
            reason=None,
            source="api",
            actor="test",
            correlation_id=None,
        )
    if status == "disputed":
        apply_transition(session, payment, "disputed", source="api", settings=settings)
    session.flush()
    return payment
