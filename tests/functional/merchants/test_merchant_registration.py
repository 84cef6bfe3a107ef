"""POST auth/register: accounts, uniqueness (also under a race), validation, starting status."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from conftest import rolled_back_testapp
from merchant_http import PASSWORD, register, unique_email

from payportal.merchants.models import AuditEntry, Merchant
from tests.factories import bearer


def test_register_returns_the_merchant_and_working_tokens(testapp, dbsession):
    email = unique_email()
    r = register(
        testapp,
        email=email.upper(),
        business_name="Ada's Books Ltd",
        business_id="GB-123456",
        phone="+44 20 7946 0958",
        website="https://ada.example.com",
        country="gb",
    )
    merchant = r.json["merchant"]
    assert merchant["email"] == email  # stored lower-cased
    assert merchant["status"] == "pending"
    assert merchant["country"] == "GB"
    assert merchant["business_id"] == "GB-123456"
    assert merchant["created_at"].endswith("Z")
    assert set(merchant) == {
        "id", "name", "email", "merchant_type", "status", "business_name", "business_id",
        "phone", "address", "website", "country", "created_at",
    }  # fmt: skip
    tokens = r.json["tokens"]
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    profile = testapp.get("/api/v1/auth/profile", headers=bearer(tokens["access_token"]))
    assert profile.json["merchant"]["id"] == merchant["id"]
    assert "password" not in r.text and "hash" not in r.text

    stored = dbsession.get(Merchant, merchant["id"])
    assert stored.password_hash.startswith("$2b$")
    assert PASSWORD not in stored.password_hash
    audit = dbsession.execute(
        sa.select(AuditEntry).where(AuditEntry.merchant_id == stored.id)
    ).scalar_one()
    assert (audit.action, audit.to_value) == ("merchant.registered", "pending")


def test_auto_activate_starts_merchants_active(app_with, connection):
    app = rolled_back_testapp(app_with(**{"payportal.auto_activate": "true"}), connection)
    assert register(app).json["merchant"]["status"] == "active"


def test_email_is_unique_whatever_its_case(testapp):
    email = unique_email()
    register(testapp, email=email)
    r = register(testapp, email=email.upper(), status=409)
    error = r.json["error"]
    assert error["type"] == "conflict"
    assert error["details"] == [{"field": "email", "message": "already registered"}]
    assert "email" in error["message"]


def test_business_id_is_unique_when_given(testapp):
    register(testapp, business_id="RC-777")
    r = register(testapp, business_id="RC-777", status=409)
    assert r.json["error"]["details"][0]["field"] == "business_id"
    # without a business_id, any number of merchants
    register(testapp)
    register(testapp)


def test_concurrent_registrations_of_one_email_make_one_account(live_testapp, committed_db):
    email = unique_email("race")
    barrier = threading.Barrier(6)
    statuses = []

    def attempt():
        barrier.wait()
        r = register(live_testapp, email=email, status="*")
        statuses.append((r.status_int, r.json))

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(s for s, _ in statuses) == [201, 409, 409, 409, 409, 409]
    for status, body in statuses:
        if status == 409:
            assert body["error"]["details"][0]["field"] == "email"
    with committed_db.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).where(Merchant.email == email)) == 1


def test_concurrent_registrations_of_one_business_id_name_the_field(live_testapp):
    barrier = threading.Barrier(4)
    results = []

    def attempt():
        barrier.wait()
        r = register(live_testapp, business_id="RACE-1", status="*")
        results.append(r)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_int for r in results) == [201, 409, 409, 409]
    assert {r.json["error"]["details"][0]["field"] for r in results if r.status_int == 409} == {
        "business_id"
    }


def test_password_length_limits(testapp):
    assert (
        register(testapp, password="x" * 9, status=422).json["error"]["details"][0]["field"]
        == "password"
    )
    register(testapp, password="x" * 10)
    register(testapp, password="y" * 1024)
    r = register(testapp, password="z" * 1025, status=422)
    assert r.json["error"]["type"] == "validation_error"


def test_invalid_fields_are_422_and_create_nothing(testapp, dbsession):
    email = unique_email()
    cases = [
        {"email": "not-an-email"},
        {"merchant_type": "charity"},
        {"unexpected": True},
        {"country": "GBR"},
        {"website": "javascript:alert(1)"},
        {"name": ""},
        {"name": None},
    ]
    for fields in cases:
        r = register(testapp, status=422, **{"email": email, **fields})
        assert r.json["error"]["type"] == "validation_error", fields
    r = testapp.post("/api/v1/auth/register", "not json", content_type="application/json",
                     status=400)  # fmt: skip
    assert r.json["error"]["type"] == "invalid_request"
    assert dbsession.scalar(sa.select(Merchant.id).where(Merchant.email == email)) is None


def test_unknown_field_is_named(testapp):
    r = register(testapp, role="admin", status=422)
    assert r.json["error"]["details"] == [{"field": "role", "message": "unknown field"}]
