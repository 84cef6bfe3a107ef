"""GET events and events/{id}: the merchant's own events, newest first, filtered and paged."""

from __future__ import annotations

import uuid

import pytest

from payportal.events.services import append_event
from tests.factories import create_api_key, merchant_headers

API = "/api/v1/events"


@pytest.fixture
def merchant(dbsession, settings):
    return merchant_headers(dbsession, settings)


def _append(dbsession, merchant, type="payment.initiated", **data):
    event = append_event(
        dbsession,
        merchant_id=merchant.id,
        type=type,
        data={"reference": f"pay_{uuid.uuid4().hex[:12]}", **data},
        payment_id=uuid.uuid4(),
        correlation_id="corr-1",
    )
    dbsession.flush()
    return event


def test_an_event_is_shown_as_its_envelope(testapp, dbsession, merchant):
    owner, headers = merchant
    event = _append(dbsession, owner, amount=1050)

    shown = testapp.get(f"{API}/{event.id}", headers=headers).json

    assert shown == {
        "id": str(event.id),
        "type": "payment.initiated",
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "merchant_id": str(owner.id),
        "correlation_id": "corr-1",
        "data": event.data,
    }


def test_events_are_listed_newest_first_in_pages(testapp, dbsession, merchant):
    owner, headers = merchant
    events = [_append(dbsession, owner, n=n) for n in range(5)]

    first = testapp.get(API, {"limit": 2}, headers=headers).json
    second = testapp.get(API, {"limit": 2, "cursor": first["next_cursor"]}, headers=headers).json
    last = testapp.get(API, {"limit": 2, "cursor": second["next_cursor"]}, headers=headers).json

    shown = [e["id"] for page in (first, second, last) for e in page["data"]]
    assert shown == [str(e.id) for e in reversed(events)]
    assert first["has_more"] and second["has_more"]
    assert not last["has_more"] and last["next_cursor"] is None


def test_events_filter_by_type(testapp, dbsession, merchant):
    owner, headers = merchant
    _append(dbsession, owner, "payment.initiated")
    completed = _append(dbsession, owner, "payment.completed")

    listed = testapp.get(API, {"type": "payment.completed"}, headers=headers).json

    assert [e["id"] for e in listed["data"]] == [str(completed.id)]


def test_bad_list_parameters_are_422(testapp, merchant):
    _owner, headers = merchant
    for params in ({"type": "payment.teleported"}, {"limit": 0}, {"cursor": "garbage"}, {"x": 1}):
        error = testapp.get(API, params, headers=headers, status=422).json["error"]
        assert error["type"] == "validation_error"


def test_another_merchants_events_are_not_found_and_not_listed(
    testapp, dbsession, settings, merchant
):
    owner, _ = merchant
    event = _append(dbsession, owner)
    _other, other_headers = merchant_headers(dbsession, settings)

    testapp.get(f"{API}/{event.id}", headers=other_headers, status=404)
    assert testapp.get(API, headers=other_headers).json["data"] == []
    testapp.get(f"{API}/{uuid.uuid4()}", headers=other_headers, status=404)
    testapp.get(f"{API}/not-a-uuid", headers=other_headers, status=404)


def test_events_need_credentials_and_an_api_key_may_read_them(testapp, dbsession, merchant):
    owner, _ = merchant
    event = _append(dbsession, owner)
    _row, key = create_api_key(dbsession, owner)

    assert testapp.get(API, status=401).json["error"]["code"] == "authentication_required"
    testapp.get(f"{API}/{event.id}", status=401)
    listed = testapp.get(API, headers={"Authorization": f"Bearer {key}"}).json
    assert [e["id"] for e in listed["data"]] == [str(event.id)]
