"""GET payment-methods (filters, cursor pages) and GET payment-methods/{id}."""

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from payportal.payment_methods.models import PaymentMethod
from tests.factories import card_method_body, create_api_key, merchant_headers

URL = "/api/v1/payment-methods"


@pytest.fixture
def merchant_and_headers(dbsession, settings):
    return merchant_headers(dbsession, settings)


def add(testapp, headers, **body):
    return testapp.post_json(URL, card_method_body(**body), headers=headers, status=201).json


def lapse(dbsession, method_id):
    """The card's month ends: move its expiry into the past, as time would."""
    dbsession.execute(
        sa.update(PaymentMethod)
        .where(PaymentMethod.id == method_id)
        .values(expires_at=sa.func.now() - dt.timedelta(seconds=1))
    )
    dbsession.flush()


def ids(response) -> list[str]:
    return [m["id"] for m in response.json["data"]]


def test_get_shows_the_method(testapp, merchant_and_headers):
    _merchant, headers = merchant_and_headers
    created = add(testapp, headers, name="Ops card")
    r = testapp.get(f"{URL}/{created['id']}", headers=headers)
    assert r.json == created


def test_get_of_an_unknown_or_malformed_id_is_404(testapp, merchant_and_headers):
    _merchant, headers = merchant_and_headers
    r = testapp.get(f"{URL}/{uuid.uuid4()}", headers=headers, status=404)
    assert r.json["error"]["type"] == "not_found"
    testapp.get(f"{URL}/not-a-uuid", headers=headers, status=404)


def test_get_without_credentials_is_401_even_for_a_real_id(testapp, merchant_and_headers):
    _merchant, headers = merchant_and_headers
    created = add(testapp, headers)
    testapp.get(f"{URL}/{created['id']}", status=401)
    testapp.get(URL, status=401)


def test_list_is_newest_first_and_pages_by_cursor(testapp, merchant_and_headers):
    _merchant, headers = merchant_and_headers
    created = [add(testapp, headers, name=f"card {i}")["id"] for i in range(5)]
    newest_first = list(reversed(created))
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        r = testapp.get(URL, params, headers=headers)
        pages += 1
        seen += ids(r)
        if not r.json["has_more"]:
            assert r.json["next_cursor"] is None
            break
        cursor = r.json["next_cursor"]
    assert seen == newest_first
    assert pages == 3


def test_list_filters_by_type(testapp, merchant_and_headers):
    _merchant, headers = merchant_and_headers
    card = add(testapp, headers)["id"]
    paypal = testapp.post_json(
        URL,
        {"name": "pp", "type": "paypal", "external_id": "PP-1", "external_provider": "paypal"},
        headers=headers,
        status=201,
    ).json["id"]
    assert ids(testapp.get(URL, {"type": "card"}, headers=headers)) == [card]
    assert ids(testapp.get(URL, {"type": "paypal"}, headers=headers)) == [paypal]
    assert ids(testapp.get(URL, {"type": "stripe"}, headers=headers)) == []


def test_a_lapsed_card_shows_expired_everywhere_and_filters_as_expired(
    testapp, merchant_and_headers, dbsession
):
    _merchant, headers = merchant_and_headers
    good = add(testapp, headers)["id"]
    old = add(testapp, headers)["id"]
    lapse(dbsession, old)
    assert testapp.get(f"{URL}/{old}", headers=headers).json["status"] == "expired"
    assert ids(testapp.get(URL, {"status": "expired"}, headers=headers)) == [old]
    assert ids(testapp.get(URL, {"status": "active"}, headers=headers)) == [good]
    listed = {m["id"]: m["status"] for m in testapp.get(URL, headers=headers).json["data"]}
    assert listed == {good: "active", old: "expired"}


def test_status_filter_sees_inactive_and_blocked(testapp, merchant_and_headers):
    _merchant, headers = merchant_and_headers
    inactive = add(testapp, headers)["id"]
    blocked = add(testapp, headers)["id"]
    testapp.put_json(f"{URL}/{inactive}", {"status": "inactive"}, headers=headers)
    testapp.put_json(f"{URL}/{blocked}", {"status": "blocked"}, headers=headers)
    assert ids(testapp.get(URL, {"status": "inactive"}, headers=headers)) == [inactive]
    assert ids(testapp.get(URL, {"status": "blocked"}, headers=headers)) == [blocked]


def test_a_blocked_card_stays_blocked_after_its_month_ends(
    testapp, merchant_and_headers, dbsession
):
    _merchant, headers = merchant_and_headers
    blocked = add(testapp, headers)["id"]
    testapp.put_json(f"{URL}/{blocked}", {"status": "blocked"}, headers=headers)
    lapse(dbsession, blocked)
    assert testapp.get(f"{URL}/{blocked}", headers=headers).json["status"] == "blocked"
    assert ids(testapp.get(URL, {"status": "expired"}, headers=headers)) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"type": "cheque"}, "type"),
        ({"status": "deleted"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_list_parameters_are_422(testapp, merchant_and_headers, params, field):
    _merchant, headers = merchant_and_headers
    r = testapp.get(URL, params, headers=headers, status=422)
    assert r.json["error"]["type"] == "validation_error"
    assert [d["field"] for d in r.json["error"]["details"]] == [field]


def test_lists_never_contain_another_merchants_methods(testapp, dbsession, settings):
    _a, headers_a = merchant_headers(dbsession, settings)
    _b, headers_b = merchant_headers(dbsession, settings)
    mine = add(testapp, headers_a)["id"]
    add(testapp, headers_b)
    assert ids(testapp.get(URL, headers=headers_a)) == [mine]


def test_an_api_key_may_read(testapp, dbsession, settings):
    merchant, headers = merchant_headers(dbsession, settings)
    created = add(testapp, headers)["id"]
    _row, key = create_api_key(dbsession, merchant)
    r = testapp.get(URL, headers={"Authorization": f"Bearer {key}"})
    assert ids(r) == [created]


def test_an_inactive_card_that_lapses_is_expired_not_inactive(
    testapp, merchant_and_headers, dbsession
):
    _merchant, headers = merchant_and_headers
    card = add(testapp, headers)["id"]
    testapp.put_json(f"{URL}/{card}", {"status": "inactive"}, headers=headers)
    lapse(dbsession, card)
    assert testapp.get(f"{URL}/{card}", headers=headers).json["status"] == "expired"
    assert ids(testapp.get(URL, {"status": "inactive"}, headers=headers)) == []
    assert ids(testapp.get(URL, {"status": "expired"}, headers=headers)) == [card]
