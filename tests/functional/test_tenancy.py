"""Tenancy matrix: merchant B's credentials on merchant A's objects answer 404, on every verb,
and no list ever shows B a row of A.

The tests walk every registered API operation (`wsgi_app.registry.api_operations`), so an
endpoint added later is checked without anyone remembering to. Each operation whose path has a
parameter ({id}, {reference}, ...) and each list (a paged GET) must be covered by OWNED_OBJECTS:
a map from a path prefix to a function that creates merchant A's object and says how to reach
it. An operation that no entry covers fails `test_every_object_endpoint_is_covered`.

To cover a new collection, write a creator and add one line to OWNED_OBJECTS:

    def payout_of(world: World, merchant) -> Owned:
        payout = create_payout(world.session, world.settings, merchant)  # tests/factories.py
        return Owned(params={"id": str(payout.id)}, list_id=str(payout.id))

    OWNED_OBJECTS = {..., "/payouts": payout_of}

`params` holds a value for every path parameter under that prefix; `list_id` is the `id` the
collection's list shows for the object. The longest matching prefix wins, so a nested path
(`/webhook-endpoints/{id}/deliveries/{delivery_id}`) can have an entry of its own that returns
both parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from payportal.apiview import ApiOperation, path_parameters
from payportal.events.endpoints import create_endpoint
from payportal.events.models import WebhookDelivery
from payportal.events.services import append_event
from tests.factories import (
    access_token,
    bearer,
    create_api_key,
    create_merchant,
    create_payment,
    create_payment_method,
    merchant_headers,
)

VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PAGE_FIELDS = frozenset({"data", "has_more", "next_cursor"})


@dataclass(frozen=True)
class World:
    """What a creator may use: the test's session (its rows are visible to the app)."""

    session: object
    settings: object
    keyring: object


@dataclass(frozen=True)
class Owned:
    """Merchant A's object: the path parameters that reach it and the id its list shows."""

    params: dict[str, str]
    list_id: str


def api_key_of(world: World, merchant) -> Owned:
    row, _key = create_api_key(world.session, merchant)
    return Owned(params={"id": str(row.id)}, list_id=str(row.id))


def payment_of(world: World, merchant) -> Owned:
    # completed, so that refunds and status changes would be allowed to its owner
    payment = create_payment(world.session, world.settings, merchant, status="completed")
    return Owned(params={"reference": payment.reference}, list_id=str(payment.id))


def payment_method_of(world: World, merchant) -> Owned:
    method = create_payment_method(world.session, world.keyring, merchant)
    return Owned(params={"id": str(method.id)}, list_id=str(method.id))


def _merchant_event(world: World, merchant):
    event = append_event(
        world.session,
        merchant_id=merchant.id,
        type="merchant.status_changed",
        data={"id": str(merchant.id), "status": "active"},
    )
    world.session.flush()
    return event


def event_of(world: World, merchant) -> Owned:
    event = _merchant_event(world, merchant)
    return Owned(params={"id": str(event.id)}, list_id=str(event.id))


def webhook_endpoint_of(world: World, merchant) -> Owned:
    """An endpoint with one delivery, so the delivery paths below it are reached too."""
    endpoint, _secret = create_endpoint(
        world.session,
        world.keyring,
        world.settings,
        merchant_id=merchant.id,
        url="https://hooks.example.com/payportal",
        events=["*"],
    )
    event = _merchant_event(world, merchant)
    delivery = WebhookDelivery(
        endpoint_id=endpoint.id, merchant_id=merchant.id, event_id=event.id, event_type=event.type
    )
    world.session.add(delivery)
    world.session.flush()
    return Owned(
        params={"id": str(endpoint.id), "delivery_id": str(delivery.id)},
        list_id=str(endpoint.id),
    )


OWNED_OBJECTS: dict[str, Callable[[World, object], Owned]] = {
    "/api-keys": api_key_of,
    "/payments": payment_of,
    "/payment-methods": payment_method_of,
    "/events": event_of,
    "/webhook-endpoints": webhook_endpoint_of,
}


def is_list(op: ApiOperation) -> bool:
    return (
        op.method == "GET"
        and not path_parameters(op.path)
        and op.response is not None
        and set(op.response.model_fields) >= PAGE_FIELDS
    )


def needs_entry(op: ApiOperation) -> bool:
    return bool(path_parameters(op.path)) or is_list(op)


def entry_for(path: str) -> str | None:
    matches = [p for p in OWNED_OBJECTS if path == p or path.startswith(p + "/")]
    return max(matches, key=len, default=None)


def concrete(path: str, params: dict[str, str]) -> str:
    for name in path_parameters(path):
        path = path.replace("{" + name + "}", params[name])
    return "/api/v1" + path


@pytest.fixture
def world(dbsession, settings, wsgi_app) -> World:
    return World(dbsession, settings, wsgi_app.registry.keyring)


@dataclass(frozen=True)
class Parties:
    owner: object  # merchant A
    owner_headers: dict[str, str]
    intruder_credentials: dict[str, dict[str, str]]  # merchant B's, by kind


@pytest.fixture
def parties(dbsession, settings) -> Parties:
    owner, owner_headers = merchant_headers(dbsession, settings)
    intruder = create_merchant(dbsession, settings)
    _row, intruder_key = create_api_key(dbsession, intruder)
    return Parties(
        owner,
        owner_headers,
        {
            "access token": bearer(access_token(settings, intruder)),
            "API key": bearer(intruder_key),
        },
    )


def call(testapp, method: str, url: str, headers: dict):
    if method in ("POST", "PUT", "PATCH"):
        return testapp.request(
            url,
            method=method,
            headers={**headers, "Content-Type": "application/json"},
            body=b"{}",
            expect_errors=True,
        )
    return testapp.request(url, method=method, headers=headers, expect_errors=True)


def test_every_object_endpoint_is_covered(wsgi_app):
    uncovered = sorted(
        f"{op.method} {op.path}"
        for op in wsgi_app.registry.api_operations
        if needs_entry(op) and entry_for(op.path) is None
    )
    assert not uncovered, (
        "these operations reach merchant-owned objects but tests/functional/test_tenancy.py "
        f"has no OWNED_OBJECTS entry for them (see its docstring): {uncovered}"
    )


def test_another_merchants_objects_are_404_on_every_verb(testapp, wsgi_app, world, parties):
    operations = [op for op in wsgi_app.registry.api_operations if path_parameters(op.path)]
    assert any(op.path == "/api-keys/{id}" for op in operations)
    checked = []
    for op in operations:
        prefix = entry_for(op.path)
        if prefix is None:
            continue  # reported by test_every_object_endpoint_is_covered
        owned = OWNED_OBJECTS[prefix](world, parties.owner)
        missing = set(path_parameters(op.path)) - set(owned.params)
        assert not missing, f"{prefix} creator gives no value for {missing} of {op.path}"
        url = concrete(op.path, owned.params)
        for label, headers in parties.intruder_credentials.items():
            # the registered verb and every other one: none may reveal the object exists
            for method in (op.method, *(v for v in VERBS if v != op.method)):
                r = call(testapp, method, url, headers)
                assert r.status_int == 404, f"{method} {op.path} with B's {label}: {r.status}"
                assert r.json["error"]["type"] == "not_found"
        if op.method == "GET":
            # the owner does reach it: the 404s above are tenancy, not a broken path
            r = call(testapp, "GET", url, parties.owner_headers)
            assert r.status_int == 200, f"GET {op.path} as its owner: {r.status}"
        checked.append(f"{op.method} {op.path}")
    assert "DELETE /api-keys/{id}" in checked


def test_lists_never_show_another_merchants_rows(testapp, wsgi_app, world, parties):
    lists = [op for op in wsgi_app.registry.api_operations if is_list(op)]
    assert any(op.path == "/api-keys" for op in lists)
    for op in lists:
        prefix = entry_for(op.path)
        if prefix is None:
            continue  # reported by test_every_object_endpoint_is_covered
        owned = OWNED_OBJECTS[prefix](world, parties.owner)
        url = "/api/v1" + op.path
        owner_ids = [
            row["id"] for row in testapp.get(url, headers=parties.owner_headers).json["data"]
        ]
        assert owned.list_id in owner_ids, f"GET {op.path}: the owner's list lacks its object"
        for label, headers in parties.intruder_credentials.items():
            r = call(testapp, "GET", url, headers)
            if r.status_int == 403:
                continue  # this credential may not list here at all (API keys and api-keys)
            assert r.status_int == 200, f"GET {op.path} with B's {label}: {r.status}"
            intruder_ids = {row["id"] for row in r.json["data"]}
            assert not intruder_ids & set(owner_ids), f"GET {op.path} shows B rows of A"
