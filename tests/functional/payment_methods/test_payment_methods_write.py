"""PUT payment-methods/{id}, PUT payment-methods/{id}/default, DELETE payment-methods/{id}."""

import datetime as dt

import pytest
import sqlalchemy as sa

from payportal.events.models import OutboxEvent
from payportal.payment_methods.models import PaymentMethod, PaymentMethodStatus
from tests.factories import card_method_body, merchant_headers

URL = "/api/v1/payment-methods"


@pytest.fixture
def merchant_and_headers(dbsession, settings):
    return merchant_headers(dbsession, settings)


def add(testapp, headers, **body):
    return testapp.post_json(URL, card_method_body(**body), headers=headers, status=201).json


def stored(dbsession, method_id) -> PaymentMethod:
    return dbsession.execute(
        sa.select(PaymentMethod)
        .where(PaymentMethod.id == method_id)
        .execution_options(populate_existing=True)
    ).scalar_one()


def updated_events(dbsession, merchant_id) -> list[OutboxEvent]:
    return list(
        dbsession.execute(
            sa.select(OutboxEvent)
            .where(
                OutboxEvent.merchant_id == merchant_id,
                OutboxEvent.type == "payment_method.updated",
            )
            .order_by(OutboxEvent.created_at)
        ).scalars()
    )


def defaults(dbsession, merchant_id) -> list[str]:
    return [
        str(i)
        for i in dbsession.scalars(
            sa.select(PaymentMethod.id).where(
                PaymentMethod.merchant_id == merchant_id,
                PaymentMethod.is_default,
                PaymentMethod.deleted_at.is_(None),
            )
        )
    ]


def test_put_changes_only_the_fields_given(testapp, merchant_and_headers, dbsession):
    merchant, headers = merchant_and_headers
    created = add(testapp, headers, name="Old name", metadata={"a": "1", "b": "2"})
    r = testapp.put_json(
        f"{URL}/{created['id']}", {"name": "  New name ", "metadata": {"c": "3"}}, headers=headers
    )
    assert r.json == {**created, "name": "New name", "metadata": {"c": "3"}}
    assert testapp.get(f"{URL}/{created['id']}", headers=headers).json == r.json
    [event] = updated_events(dbsession, merchant.id)
    assert event.data == r.json
    assert stored(dbsession, created["id"]).updated_by == f"merchant:{merchant.id}"


def test_put_that_changes_nothing_records_no_event(testapp, merchant_and_headers, dbsession):
    merchant, headers = merchant_and_headers
    created = add(testapp, headers, name="Same")
    r = testapp.put_json(f"{URL}/{created['id']}", {"name": "Same"}, headers=headers)
    testapp.put_json(f"{URL}/{created['id']}", {}, headers=headers)
    assert r.json == created
    assert updated_events(dbsession, merchant.id) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "expired"}, "status"),
        ({"status": "deleted"}, "status"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"is_default": "yes"}, "is_default"),
        ({"metadata": {"k": "v" * 501}}, "metadata.k"),
        ({"type": "paypal"}, "type"),
        ({"card": {"number": "4111111111111111"}}, "card"),
    ],
)
def test_put_refuses_bad_or_unknown_fields(testapp, merchant_and_headers, dbsession, body, field):
    merchant, headers = merchant_and_headers
    created = add(testapp, headers)
    r = testapp.put_json(f"{URL}/{created['id']}", body, headers=headers, status=422)
    assert field in [d["field"] for d in r.json["error"]["details"]]
    assert testapp.get(f"{URL}/{created['id']}", headers=headers).json == created
    assert updated_events(dbsession, merchant.id) == []


def test_status_can_be_deactivated_blocked_and_reactivated(testapp, merchant_and_headers):
    _merchant, headers = merchant_and_headers
    url = f"{URL}/{add(testapp, headers)['id']}"
    for status in ("inactive", "blocked", "active"):
        assert testapp.put_json(url, {"status": status}, headers=headers).json["status"] == status


def test_a_lapsed_card_cannot_be_reactivated_and_its_status_is_stored(
    testapp, merchant_and_headers, dbsession
):
    _merchant, headers = merchant_and_headers
    created = add(testapp, headers)
    dbsession.execute(
        sa.update(PaymentMethod)
        .where(PaymentMethod.id == created["id"])
        .values(expires_at=sa.func.now() - dt.timedelta(seconds=1))
    )
    dbsession.flush()
    r = testapp.put_json(
        f"{URL}/{created['id']}", {"status": "active"}, headers=headers, status=409
    )
    assert r.json["error"]["code"] == "payment_method_expired"
    # a rename still works, and the write records what readers already saw
    r = testapp.put_json(f"{URL}/{created['id']}", {"name": "Old card"}, headers=headers)
    assert r.json["status"] == "expired"
    assert stored(dbsession, created["id"]).status is PaymentMethodStatus.EXPIRED


def test_make_default_moves_the_only_default(testapp, merchant_and_headers, dbsession):
    merchant, headers = merchant_and_headers
    first = add(testapp, headers)
    second = add(testapp, headers)
    r = testapp.put(f"{URL}/{second['id']}/default", headers=headers, status=200)
    assert r.json["is_default"] is True
    assert defaults(dbsession, merchant.id) == [second["id"]]
    assert testapp.get(f"{URL}/{first['id']}", headers=headers).json["is_default"] is False
    events = updated_events(dbsession, merchant.id)
    assert [(e.data["id"], e.data["is_default"]) for e in events] == [
        (first["id"], False),
        (second["id"], True),
    ]


def test_make_default_of_the_default_changes_nothing(testapp, merchant_and_headers, dbsession):
    merchant, headers = merchant_and_headers
    first = add(testapp, headers)
    r = testapp.put(f"{URL}/{first['id']}/default", headers=headers, status=200)
    assert r.json == first
    assert updated_events(dbsession, merchant.id) == []


def test_put_is_default_true_and_false(testapp, merchant_and_headers, dbsession):
    merchant, headers = merchant_and_headers
    first = add(testapp, headers)
    second = add(testapp, headers)
    testapp.put_json(f"{URL}/{second['id']}", {"is_default": True}, headers=headers)
    assert defaults(dbsession, merchant.id) == [second["id"]]
    r = testapp.put_json(f"{URL}/{second['id']}", {"is_default": False}, headers=headers)
    assert r.json["is_default"] is False
    assert defaults(dbsession, merchant.id) == []
    assert first["is_default"] is True


@pytest.mark.parametrize("status", ["inactive", "blocked"])
def test_only_an_active_method_can_become_the_default(
    testapp, merchant_and_headers, dbsession, status
):
    merchant, headers = merchant_and_headers
    first = add(testapp, headers)
    second = add(testapp, headers)
    testapp.put_json(f"{URL}/{second['id']}", {"status": status}, headers=headers)
    r = testapp.put(f"{URL}/{second['id']}/default", headers=headers, status=409)
    assert r.json["error"]["code"] == "payment_method_not_active"
    r = testapp.put_json(
        f"{URL}/{second['id']}", {"status": "active", "is_default": True}, headers=headers
    )
    assert defaults(dbsession, merchant.id) == [second["id"]] != [first["id"]]
    # and a request that both deactivates and defaults is refused whole
    r = testapp.put_json(
        f"{URL}/{first['id']}",
        {"status": "inactive", "is_default": True},
        headers=headers,
        status=409,
    )
    assert testapp.get(f"{URL}/{first['id']}", headers=headers).json["status"] == "active"


def test_delete_soft_deletes(testapp, merchant_and_headers, dbsession):
    merchant, headers = merchant_and_headers
    first = add(testapp, headers)
    second = add(testapp, headers)
    r = testapp.delete(f"{URL}/{first['id']}", headers=headers, status=204)
    assert r.body == b""
    testapp.get(f"{URL}/{first['id']}", headers=headers, status=404)
    testapp.put_json(f"{URL}/{first['id']}", {"name": "x"}, headers=headers, status=404)
    testapp.put(f"{URL}/{first['id']}/default", headers=headers, status=404)
    testapp.delete(f"{URL}/{first['id']}", headers=headers, status=404)
    listed = testapp.get(URL, headers=headers).json["data"]
    assert [m["id"] for m in listed] == [second["id"]]
    row = stored(dbsession, first["id"])
    assert row.deleted_at is not None
    assert row.sealed_details is not None  # kept for the payments that used it
    # the deleted default is no longer one: another method can take its place
    assert row.is_default is False
    assert defaults(dbsession, merchant.id) == []
    testapp.put(f"{URL}/{second['id']}/default", headers=headers, status=200)
    assert defaults(dbsession, merchant.id) == [second["id"]]


def test_the_unique_index_allows_no_second_default(dbsession, settings, wsgi_app):
    from tests.factories import create_payment_method

    merchant, _headers = merchant_headers(dbsession, settings)
    create_payment_method(dbsession, wsgi_app.registry.keyring, merchant)
    second = create_payment_method(dbsession, wsgi_app.registry.keyring, merchant)
    with (
        pytest.raises(sa.exc.IntegrityError, match="uq_payment_methods_one_default"),
        dbsession.begin_nested(),
    ):
        dbsession.execute(
            sa.update(PaymentMethod).where(PaymentMethod.id == second.id).values(is_default=True)
        )
