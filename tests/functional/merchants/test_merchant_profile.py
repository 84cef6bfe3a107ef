"""GET and PATCH auth/profile."""

from __future__ import annotations

from merchant_http import register

from tests.factories import bearer, create_api_key, create_merchant

PROFILE = "/api/v1/auth/profile"


def test_patch_changes_only_the_fields_sent(testapp):
    r = register(testapp, phone="+1 555 0100", address="1 Main St", business_name="Old Name")
    headers = bearer(r.json["tokens"]["access_token"])
    updated = testapp.patch_json(
        PROFILE,
        {"name": "New Name", "website": "https://new.example.com", "address": None},
        headers=headers,
    ).json["merchant"]
    assert updated["name"] == "New Name"
    assert updated["website"] == "https://new.example.com"
    assert updated["address"] is None  # null clears an optional field
    assert updated["phone"] == "+1 555 0100"  # not sent: unchanged
    assert updated["business_name"] == "Old Name"
    assert testapp.get(PROFILE, headers=headers).json["merchant"] == updated


def test_patch_refuses_what_the_profile_does_not_own(testapp):
    headers = bearer(register(testapp).json["tokens"]["access_token"])
    for body in (
        {"email": "new@example.com"},
        {"status": "active"},
        {"business_id": "X-1"},
        {"name": None},
        {"name": ""},
        {"website": "ftp://files.example.com"},
        {"phone": "call me maybe"},
    ):
        r = testapp.patch_json(PROFILE, body, headers=headers, status=422)
        assert r.json["error"]["type"] == "validation_error", body
    assert testapp.get(PROFILE, headers=headers).json["merchant"]["status"] == "pending"


def test_an_api_key_reads_the_profile_but_cannot_change_it(testapp, dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    _row, key = create_api_key(dbsession, merchant)
    assert testapp.get(PROFILE, headers=bearer(key)).json["merchant"]["email"] == merchant.email
    r = testapp.patch_json(PROFILE, {"name": "Hijacked"}, headers=bearer(key), status=403)
    assert r.json["error"]["type"] == "permission_error"
    assert testapp.get(PROFILE, headers=bearer(key)).json["merchant"]["name"] == merchant.name
