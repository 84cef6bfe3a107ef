"""Another merchant's payment method is not found on every verb, and nothing about it changes."""

import pytest

from payportal.payment_methods.models import PaymentMethod
from tests.factories import card_method_body, create_api_key, merchant_headers

URL = "/api/v1/payment-methods"


@pytest.fixture
def foreign_method(testapp, dbsession, settings):
    _owner, owner_headers = merchant_headers(dbsession, settings)
    created = testapp.post_json(URL, card_method_body(), headers=owner_headers, status=201).json
    return created, owner_headers


@pytest.fixture(params=["access_token", "api_key"])
def intruder_headers(request, dbsession, settings):
    merchant, headers = merchant_headers(dbsession, settings)
    testapp_method_headers = headers
    if request.param == "api_key":
        _row, key = create_api_key(dbsession, merchant)
        testapp_method_headers = {"Authorization": f"Bearer {key}"}
    return testapp_method_headers


@pytest.mark.parametrize(
    ("verb", "suffix", "body"),
    [
        ("get", "", None),
        ("put_json", "", {"name": "stolen", "status": "blocked", "is_default": True}),
        ("delete", "", None),
        ("put", "/default", None),
    ],
)
def test_another_merchants_method_is_404_and_untouched(
    testapp, dbsession, foreign_method, intruder_headers, verb, suffix, body
):
    created, owner_headers = foreign_method
    url = f"{URL}/{created['id']}{suffix}"
    args = (url, body) if body is not None else (url,)
    r = getattr(testapp, verb)(*args, headers=intruder_headers, status=404)
    assert r.json["error"]["type"] == "not_found"
    assert testapp.get(f"{URL}/{created['id']}", headers=owner_headers).json == created
    assert dbsession.get(PaymentMethod, created["id"]).deleted_at is None
