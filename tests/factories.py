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


def pending_merchant(session, name: str) -> Merchant:
    """An active business merchant added to the session and not flushed: what a statement run
    next must see (the session flushes first)."""
    merchant = Merchant(
        name=name,
        email=f"{name.lower().replace(' ', '-')}@example.com",
        password_hash="x",
        merchant_type=MerchantType.BUSINESS,
        status=MerchantStatus.ACTIVE,
        created_by="test",
    )
    session.add(merchant)
    return merchant


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


def card_method_body(number: str = "4242424242424242", **fields) -> dict:
    """The JSON body of POST payment-methods for a card that is good for years."""
    import datetime as dt

    card = {"number": number, "exp_month": 12, "exp_year": dt.date.today().year + 3}
    card.update(fields.pop("card", {}))
    return {"name": "Company card", "type": "card", "card": card, **fields}


def create_payment_method(session, keyring, merchant: Merchant, **body_fields):
    """A payment method written through the service (a Visa card unless the body says else)."""
    import json

    from payportal.payment_methods.schemas import CreatePaymentMethod
    from payportal.payment_methods.services import create_payment_method as create

    body = body_fields if "type" in body_fields else card_method_body(**body_fields)
    return create(
        session,
        keyring,
        merchant.id,
        CreatePaymentMethod.model_validate_json(json.dumps(body)),
        actor=f"merchant:{merchant.id}",
    )


def create_payment(session, settings, merchant, *, status: str = "pending", **fields):
    """A payment of `merchant` initialized by the service, then walked to `status` through the
    state machine (refunded states by real refunds: partially_refunded refunds half)."""
    from payportal.payments.models import Payment
    from payportal.payments.schemas import InitializePayment
    from payportal.payments.services import initialize_payment, refund_payment
    from payportal.payments.state import apply_transition

    data = InitializePayment(**{"amount": 10_000, "currency": "USD", **fields})
    created = initialize_payment(
        session, settings, merchant.id, data, actor="test", correlation_id=None
    )
    payment = session.get(Payment, created.id)
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


def create_payment_row(
    session,
    settings,
    merchant,
    *,
    amount: int = 10_000,
    currency: str = "USD",
    status: str = "pending",
    expires_in: int = 1800,
    **fields,
):
    """A payment written straight through the model with its first transition (no services):
    any status, any expiry (a negative `expires_in` makes a pending payment already past it)."""
    import datetime as dt

    from payportal.db import utcnow
    from payportal.payments.models import Payment, PaymentTransition
    from payportal.payments.services import new_reference

    payment = Payment(
        reference=new_reference("pay_"),
        merchant_id=merchant.id,
        amount=amount,
        currency=currency,
        status=status,
        expires_at=utcnow() + dt.timedelta(seconds=expires_in),
        created_by="test",
        **fields,
    )
    session.add(payment)
    session.flush()
    session.add(
        PaymentTransition(
            payment_id=payment.id,
            merchant_id=merchant.id,
            from_status=None,
            to_status=status,
            source="api",
            actor="test",
        )
    )
    session.flush()
    return payment


def create_operator(
    session, settings, *, email: str | None = None, password: str = DEFAULT_PASSWORD
):
    """A platform operator account, as `payportal-admin create-operator` makes one."""
    from payportal.merchants.services import create_operator as create

    email = email or f"operator{next(_counter)}-{secrets.token_hex(3)}@example.com"
    return create(session, settings, email=email, password=password, name="Test Operator")
