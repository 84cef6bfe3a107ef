"""API keys: created once in the clear, stored as a digest, usable at once, revoked at once."""

from __future__ import annotations

import datetime as dt
import hashlib

import sqlalchemy as sa

from payportal.merchants.models import ApiKey, AuditEntry
from tests.factories import bearer, create_api_key, merchant_headers

KEYS = "/api/v1/api-keys"


def test_create_shows_the_key_once_and_stores_only_its_digest(testapp, dbsession, settings):
    _merchant, headers = merchant_headers(dbsession, settings)
    r = testapp.post_json(KEYS, {"name": "checkout server"}, headers=headers, status=201)
    created = r.json
    key = created["key"]
    assert key.startswith("sk_")
    assert len(key) >= 3 + 43  # 32 random bytes, url-safe base64
    assert key[:11] == created["prefix"]
    assert set(created) == {"id", "name", "prefix", "key", "created_at"}

    row = dbsession.get(ApiKey, created["id"])
    assert row.digest == hashlib.sha256(key.encode()).hexdigest()
    stored = dbsession.execute(sa.text("SELECT * FROM api_keys WHERE id = :id"), {"id": row.id})
    assert key not in str(stored.one())

    listed = testapp.get(KEYS, headers=headers).json
    assert [k["id"] for k in listed["data"]] == [created["id"]]
    assert set(listed["data"][0]) == {"id", "name", "prefix", "created_at", "last_used_at"}
    assert key not in testapp.get(KEYS, headers=headers).text


def test_a_key_authenticates_integration_calls(testapp, dbsession, settings):
    merchant, headers = merchant_headers(dbsession, settings)
    key = testapp.post_json(KEYS, {"name": "k"}, headers=headers).json["key"]
    r = testapp.get("/api/v1/auth/profile", headers=bearer(key))
    assert r.json["merchant"]["id"] == str(merchant.id)


def test_revocation_is_effective_on_the_very_next_request(testapp, dbsession, settings):
    _merchant, headers = merchant_headers(dbsession, settings)
    created = testapp.post_json(KEYS, {"name": "k"}, headers=headers).json
    testapp.get("/api/v1/auth/profile", headers=bearer(created["key"]))
    testapp.delete(f"{KEYS}/{created['id']}", headers=headers, status=204)
    testapp.get("/api/v1/auth/profile", headers=bearer(created["key"]), status=401)
    assert testapp.get(KEYS, headers=headers).json["data"] == []
    testapp.delete(f"{KEYS}/{created['id']}", headers=headers, status=404)
    actions = dbsession.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.created_at))
    assert list(actions) == ["api_key.created", "api_key.revoked"]


def test_revocation_holds_across_committed_requests(live_testapp, wsgi_app, settings):
    from sqlalchemy.orm import Session

    with Session(wsgi_app.registry.dbengine) as session, session.begin():
        _merchant, headers = merchant_headers(session, settings)
    created = live_testapp.post_json(KEYS, {"name": "k"}, headers=headers).json
    live_testapp.get("/api/v1/auth/profile", headers=bearer(created["key"]))
    live_testapp.delete(f"{KEYS}/{created['id']}", headers=headers, status=204)
    live_testapp.get("/api/v1/auth/profile", headers=bearer(created["key"]), status=401)


def test_last_used_at_moves_at_most_once_a_minute(testapp, wsgi_app, dbsession, settings):
    merchant, _headers = merchant_headers(dbsession, settings)
    row, key = create_api_key(dbsession, merchant)
    testapp.get("/api/v1/auth/profile", headers=bearer(key))
    dbsession.refresh(row)
    first_use = row.last_used_at
    assert first_use is not None
    testapp.get("/api/v1/auth/profile", headers=bearer(key))
    dbsession.refresh(row)
    assert row.last_used_at == first_use
    # a minute passes: in the database and in the process's memory of its last write
    row.last_used_at = first_use - dt.timedelta(seconds=61)
    dbsession.flush()
    wsgi_app.registry.auth_cache.key_touched[row.id] -= 61
    testapp.get("/api/v1/auth/profile", headers=bearer(key))
    dbsession.refresh(row)
    assert row.last_used_at > first_use - dt.timedelta(seconds=61)


def test_an_api_key_may_not_manage_keys_nor_the_profile(testapp, dbsession, settings):
    merchant, headers = merchant_headers(dbsession, settings)
    row, key = create_api_key(dbsession, merchant)
    attempts = [
        testapp.post_json(KEYS, {"name": "another"}, headers=bearer(key), status=403),
        testapp.get(KEYS, headers=bearer(key), status=403),
        testapp.delete(f"{KEYS}/{row.id}", headers=bearer(key), status=403),
        testapp.patch_json("/api/v1/auth/profile", {"name": "X"}, headers=bearer(key), status=403),
    ]
    for r in attempts:
        assert r.json["error"]["type"] == "permission_error"
    # and it still works: nothing above revoked it
    testapp.get("/api/v1/auth/profile", headers=bearer(key))
    assert testapp.get(KEYS, headers=headers).json["data"][0]["id"] == str(row.id)


def test_keys_need_credentials(testapp, dbsession, settings):
    merchant, _headers = merchant_headers(dbsession, settings)
    row, _key = create_api_key(dbsession, merchant)
    testapp.get(KEYS, status=401)
    testapp.post_json(KEYS, {"name": "k"}, status=401)
    testapp.delete(f"{KEYS}/{row.id}", status=401)
    testapp.delete(f"{KEYS}/not-a-uuid", status=404)


def test_key_names_are_validated(testapp, dbsession, settings):
    _merchant, headers = merchant_headers(dbsession, settings)
    for body in ({}, {"name": ""}, {"name": "x" * 201}, {"name": "k", "scopes": ["all"]}):
        r = testapp.post_json(KEYS, body, headers=headers, status=422)
        assert r.json["error"]["type"] == "validation_error"
    assert testapp.get(KEYS, headers=headers).json["data"] == []


def test_keys_page_newest_first(testapp, dbsession, settings):
    _merchant, headers = merchant_headers(dbsession, settings)
    ids = [testapp.post_json(KEYS, {"name": f"k{i}"}, headers=headers).json["id"] for i in range(3)]
    first = testapp.get(KEYS, {"limit": 2}, headers=headers).json
    assert [k["id"] for k in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True
    second = testapp.get(KEYS, {"limit": 2, "cursor": first["next_cursor"]}, headers=headers).json
    assert [k["id"] for k in second["data"]] == [ids[0]]
    assert second["has_more"] is False
