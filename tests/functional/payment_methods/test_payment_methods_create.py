"""POST payment-methods: each type, its required details, validation, sealing, default, events."""

import datetime as dt

import pytest
import sqlalchemy as sa

from payportal.events.models import OutboxEvent
from payportal.payment_methods.models import PaymentMethod
from payportal.payment_methods.services import open_details
from tests.factories import card_method_body, create_api_key, merchant_headers

URL = "/api/v1/payment-methods"
SHAPE = {
    "id",
    "name",
    "type",
    "status",
    "is_default",
    "brand",
    "last4",
    "exp_month",
    "exp_year",
    "bank_name",
    "provider",
    "external_provider",
    "metadata",
    "expires_at",
    "created_at",
}


@pytest.fixture
def merchant_and_headers(dbsession, settings):
    return merchant_headers(dbsession, settings)


@pytest.fixture
def headers(merchant_and_headers):
    return merchant_and_headers[1]


def stored(dbsession, method_id) -> PaymentMethod:
    return dbsession.execute(
        sa.select(PaymentMethod)
        .where(PaymentMethod.id == method_id)
        .execution_options(populate_existing=True)
    ).scalar_one()


def events_of(dbsession, merchant_id, type_=None) -> list[OutboxEvent]:
    stmt = sa.select(OutboxEvent).where(OutboxEvent.merchant_id == merchant_id)
    if type_:
        stmt = stmt.where(OutboxEvent.type == type_)
    return list(dbsession.execute(stmt.order_by(OutboxEvent.created_at)).scalars())


def errors_by_field(response) -> dict[str, str]:
    assert response.json["error"]["type"] == "validation_error"
    return {d["field"]: d["message"] for d in response.json["error"]["details"]}


def test_card_shows_brand_last4_and_expiry_never_the_number(testapp, headers, wsgi_app, dbsession):
    year = dt.date.today().year + 2
    body = card_method_body(
        "5555 5555 5555 4444", card={"exp_month": 3, "exp_year": year, "holder_name": "Ada L"}
    )
    r = testapp.post_json(URL, body, headers=headers, status=201)
    data = r.json
    assert set(data) == SHAPE
    assert data["type"] == "card"
    assert data["status"] == "active"
    assert (data["brand"], data["last4"]) == ("mastercard", "4444")
    assert (data["exp_month"], data["exp_year"]) == (3, year)
    assert data["expires_at"] == f"{year}-04-01T00:00:00Z"
    assert data["created_at"].endswith("Z")
    assert "5555555555554444" not in r.text
    row = stored(dbsession, data["id"])
    assert "5555555555554444" not in row.sealed_details
    assert row.sealed_details.startswith("v1.t1.")
    assert open_details(wsgi_app.registry.keyring, row) == {"number": "5555555555554444"}


def test_bank_account_seals_the_account_number(testapp, headers, wsgi_app, dbsession):
    body = {
        "name": "Payroll account",
        "type": "bank_account",
        "bank_account": {
            "bank_name": "First Bank",
            "account_number": "GB82 WEST 1234 5698 7654 32",
            "account_holder_name": "Acme Ltd",
        },
    }
    r = testapp.post_json(URL, body, headers=headers, status=201)
    assert (r.json["bank_name"], r.json["last4"], r.json["brand"]) == ("First Bank", "5432", None)
    assert "GB82WEST12345698765432" not in r.text
    row = stored(dbsession, r.json["id"])
    assert row.holder_name == "Acme Ltd"
    assert open_details(wsgi_app.registry.keyring, row) == {
        "account_number": "GB82WEST12345698765432"
    }


def test_mobile_money_seals_the_phone_number(testapp, headers, wsgi_app, dbsession):
    body = {
        "name": "M-Pesa till",
        "type": "mobile_money",
        "mobile_money": {"provider": "mpesa", "phone_number": "+254712345678"},
    }
    r = testapp.post_json(URL, body, headers=headers, status=201)
    assert (r.json["provider"], r.json["last4"]) == ("mpesa", "5678")
    assert "712345678" not in r.text
    row = stored(dbsession, r.json["id"])
    assert open_details(wsgi_app.registry.keyring, row) == {"phone_number": "+254712345678"}


@pytest.mark.parametrize("method_type", ["crypto", "paypal", "stripe"])
def test_external_types_need_an_external_id_and_provider(testapp, headers, method_type):
    body = {
        "name": f"My {method_type}",
        "type": method_type,
        "external_id": "acct_123",
        "external_provider": method_type,
    }
    r = testapp.post_json(URL, body, headers=headers, status=201)
    assert r.json["type"] == method_type
    assert r.json["external_provider"] == method_type
    assert r.json["last4"] is None
    r = testapp.post_json(URL, {"name": "x", "type": method_type}, headers=headers, status=422)
    assert errors_by_field(r) == {
        "external_id": f"required when type is {method_type}",
        "external_provider": f"required when type is {method_type}",
    }


@pytest.mark.parametrize(
    ("method_type", "details_field"),
    [("card", "card"), ("bank_account", "bank_account"), ("mobile_money", "mobile_money")],
)
def test_each_type_requires_its_own_details(testapp, headers, method_type, details_field):
    r = testapp.post_json(URL, {"name": "x", "type": method_type}, headers=headers, status=422)
    assert errors_by_field(r) == {details_field: f"required when type is {method_type}"}


def test_details_of_another_type_are_refused(testapp, headers):
    body = card_method_body(mobile_money={"provider": "mtn", "phone_number": "+233201234567"})
    r = testapp.post_json(URL, body, headers=headers, status=422)
    assert errors_by_field(r) == {"mobile_money": "not allowed when type is card"}


@pytest.mark.parametrize("field", ["cvv", "cvc", "cvv2", "pin"])
def test_a_cvv_or_any_unknown_card_field_is_refused(testapp, headers, dbsession, field):
    merchant_count = dbsession.scalar(sa.select(sa.func.count()).select_from(PaymentMethod))
    body = card_method_body(card={field: "123"})
    r = testapp.post_json(URL, body, headers=headers, status=422)
    assert errors_by_field(r) == {f"card.{field}": "unknown field"}
    assert "123" not in r.text
    assert dbsession.scalar(sa.select(sa.func.count()).select_from(PaymentMethod)) == merchant_count


def test_unknown_top_level_field_is_refused(testapp, headers):
    r = testapp.post_json(URL, card_method_body(cvv="123"), headers=headers, status=422)
    assert errors_by_field(r) == {"cvv": "unknown field"}


@pytest.mark.parametrize(
    ("card", "field", "message"),
    [
        ({"number": "4242424242424241"}, "card.number", "Luhn"),
        ({"number": "6200000000000005"}, "card.number", "brand is not supported"),
        ({"number": "4242-abcd-4242-4242"}, "card.number", "digits only"),
        ({"exp_month": 13}, "card.exp_month", "less than or equal to 12"),
        ({"exp_month": 0}, "card.exp_month", "greater than or equal to 1"),
        ({"exp_month": "12"}, "card.exp_month", "valid integer"),
        ({"exp_year": 2101}, "card.exp_year", "less than or equal to 2100"),
    ],
)
def test_bad_card_details_name_the_field(testapp, headers, card, field, message):
    r = testapp.post_json(URL, card_method_body(card=card), headers=headers, status=422)
    details = errors_by_field(r)
    assert list(details) == [field]
    assert message in details[field]


def test_expired_card_is_refused_on_create(testapp, headers):
    last_month = dt.date.today().replace(day=1) - dt.timedelta(days=1)
    body = card_method_body(card={"exp_month": last_month.month, "exp_year": last_month.year})
    r = testapp.post_json(URL, body, headers=headers, status=422)
    assert r.json["error"]["code"] == "card_expired"
    assert errors_by_field(r) == {"card.exp_year": "card has expired"}


def test_card_expiring_this_month_is_still_good(testapp, headers):
    today = dt.date.today()
    body = card_method_body(card={"exp_month": today.month, "exp_year": today.year})
    r = testapp.post_json(URL, body, headers=headers, status=201)
    assert r.json["status"] == "active"


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({f"k{i}": "v" for i in range(51)}, "metadata"),
        ({"k" * 41: "v"}, "metadata." + "k" * 41 + ".[key]"),
        ({"note": "x" * 501}, "metadata.note"),
        ({"count": 3}, "metadata.count"),
        ({"nested": {"a": "b"}}, "metadata.nested"),
    ],
)
def test_metadata_limits(testapp, headers, metadata, field):
    r = testapp.post_json(URL, card_method_body(metadata=metadata), headers=headers, status=422)
    assert field in errors_by_field(r)


@pytest.mark.parametrize(
    "metadata",
    [
        {f"key{i}": "v" for i in range(50)},
        {"k" * 40: "v" * 500},
        {"empty": ""},
    ],
)
def test_metadata_at_the_limits_is_kept(testapp, headers, metadata):
    # (each limit on its own: a body over 10 KB makes WebOb spool it to an unclosed temp file)
    r = testapp.post_json(URL, card_method_body(metadata=metadata), headers=headers, status=201)
    assert r.json["metadata"] == metadata


def test_first_method_becomes_the_default_and_later_ones_do_not(testapp, headers):
    first = testapp.post_json(URL, card_method_body(), headers=headers, status=201).json
    second = testapp.post_json(URL, card_method_body(), headers=headers, status=201).json
    assert first["is_default"] is True
    assert second["is_default"] is False


def test_first_method_may_decline_to_be_the_default(testapp, headers):
    r = testapp.post_json(URL, card_method_body(is_default=False), headers=headers, status=201)
    assert r.json["is_default"] is False


def test_creating_with_is_default_moves_the_default(testapp, merchant_and_headers, dbsession):
    merchant, headers = merchant_and_headers
    first = testapp.post_json(URL, card_method_body(), headers=headers, status=201).json
    second = testapp.post_json(
        URL, card_method_body("378282246310005", is_default=True), headers=headers, status=201
    ).json
    assert second["is_default"] is True
    assert stored(dbsession, first["id"]).is_default is False
    cleared = events_of(dbsession, merchant.id, "payment_method.updated")
    assert [e.data["id"] for e in cleared] == [first["id"]]
    assert cleared[0].data["is_default"] is False


def test_created_event_carries_the_api_shape_and_nothing_sealed(
    testapp, merchant_and_headers, dbsession
):
    merchant, headers = merchant_and_headers
    r = testapp.post_json(
        URL,
        card_method_body(),
        headers={**headers, "X-Correlation-ID": "corr-pm-1"},
        status=201,
    )
    [event] = events_of(dbsession, merchant.id)
    assert event.type == "payment_method.created"
    assert event.data == r.json
    assert event.correlation_id == "corr-pm-1"
    assert event.payment_id is None


def test_an_idempotent_retry_creates_one_method(testapp, merchant_and_headers, dbsession):
    merchant, headers = merchant_and_headers
    headers = {**headers, "Idempotency-Key": "pm-create-1"}
    first = testapp.post_json(URL, card_method_body(), headers=headers, status=201)
    again = testapp.post_json(URL, card_method_body(), headers=headers, status=201)
    assert again.body == first.body
    count = dbsession.scalar(
        sa.select(sa.func.count())
        .select_from(PaymentMethod)
        .where(PaymentMethod.merchant_id == merchant.id)
    )
    assert count == 1
    assert len(events_of(dbsession, merchant.id)) == 1


def test_an_api_key_may_create_methods(testapp, dbsession, settings):
    merchant, _headers = merchant_headers(dbsession, settings)
    _row, key = create_api_key(dbsession, merchant)
    r = testapp.post_json(
        URL, card_method_body(), headers={"Authorization": f"Bearer {key}"}, status=201
    )
    assert stored(dbsession, r.json["id"]).created_by == f"merchant:{merchant.id}"


def test_an_inactive_merchant_may_still_record_methods(testapp, dbsession, settings):
    # recording a method moves no money; only initialize/status/refund need an active account
    _merchant, headers = merchant_headers(dbsession, settings, status="pending")
    testapp.post_json(URL, card_method_body(), headers=headers, status=201)


def test_without_credentials_nothing_is_created(testapp, dbsession):
    before = dbsession.scalar(sa.select(sa.func.count()).select_from(PaymentMethod))
    r = testapp.post_json(URL, card_method_body(), status=401)
    assert r.json["error"]["type"] == "authentication_error"
    assert dbsession.scalar(sa.select(sa.func.count()).select_from(PaymentMethod)) == before


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"not json", 400), (b"[1, 2]", 400), (b"", 400)],
)
def test_a_body_that_is_not_a_json_object_is_a_400(testapp, headers, body, status):
    r = testapp.post(
        URL, body, headers={**headers, "Content-Type": "application/json"}, status=status
    )
    assert r.json["error"]["type"] == "invalid_request"
