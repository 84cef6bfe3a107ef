"""Sign-in, refresh rotation with reuse detection, logout, and password changes over HTTP."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from merchant_http import PASSWORD, login, refresh, register, unique_email

from payportal.merchants.models import AuditEntry, RefreshToken
from tests.factories import DEFAULT_PASSWORD, bearer, create_api_key, create_merchant

NEW_PASSWORD = "an entirely different passphrase"


def test_login_returns_merchant_and_tokens_whatever_the_email_case(testapp):
    email = unique_email()
    register(testapp, email=email)
    r = login(testapp, "  " + email.upper())
    assert r.json["merchant"]["email"] == email
    assert r.json["tokens"]["token_type"] == "Bearer"
    testapp.get("/api/v1/auth/profile", headers=bearer(r.json["tokens"]["access_token"]))


def test_wrong_password_and_unknown_email_answer_the_same(testapp):
    email = unique_email()
    register(testapp, email=email)
    wrong_password = login(testapp, email, "not the password at all", status=401).json
    unknown_email = login(testapp, unique_email(), PASSWORD, status=401).json
    for body in (wrong_password, unknown_email):
        del body["error"]["correlation_id"]
    assert wrong_password == unknown_email
    assert wrong_password["error"]["code"] == "invalid_credentials"


def test_non_active_merchants_can_sign_in_and_read(testapp, dbsession, settings):
    for status in ("pending", "suspended", "inactive"):
        merchant = create_merchant(dbsession, settings, status=status)
        r = login(testapp, merchant.email, DEFAULT_PASSWORD)
        assert r.json["merchant"]["status"] == status
        headers = bearer(r.json["tokens"]["access_token"])
        assert testapp.get("/api/v1/auth/profile", headers=headers).json["merchant"]["id"]
        testapp.get("/api/v1/api-keys", headers=headers)


def test_passwords_sharing_their_first_72_bytes_are_different_passwords(testapp):
    prefix = "p" * 72
    email = unique_email()
    register(testapp, email=email, password=prefix + "-first")
    login(testapp, email, prefix + "-first")
    login(testapp, email, prefix + "-second", status=401)
    login(testapp, email, prefix, status=401)


def test_refresh_rotates_and_each_refresh_token_works_once(testapp):
    tokens = register(testapp).json["tokens"]
    second = refresh(testapp, tokens["refresh_token"]).json["tokens"]
    assert second["refresh_token"] != tokens["refresh_token"]
    testapp.get("/api/v1/auth/profile", headers=bearer(second["access_token"]))
    third = refresh(testapp, second["refresh_token"]).json["tokens"]
    testapp.get("/api/v1/auth/profile", headers=bearer(third["access_token"]))


def test_a_reused_refresh_token_revokes_its_whole_family(testapp, dbsession):
    tokens = register(testapp).json["tokens"]
    other_login = login(testapp, testapp.get(
        "/api/v1/auth/profile", headers=bearer(tokens["access_token"])
    ).json["merchant"]["email"]).json["tokens"]  # fmt: skip
    newest = refresh(testapp, tokens["refresh_token"]).json["tokens"]

    r = refresh(testapp, tokens["refresh_token"], status=401)  # the first one, again
    assert r.json["error"]["code"] == "invalid_refresh_token"
    # the newest token of that family stops working too ...
    refresh(testapp, newest["refresh_token"], status=401)
    # ... while another sign-in (another family) is untouched
    refresh(testapp, other_login["refresh_token"])
    revoked = dbsession.scalars(
        sa.select(RefreshToken.revoked_at).where(RefreshToken.revoked_at.is_not(None))
    ).all()
    assert len(revoked) == 2


def test_reuse_revocation_is_committed_although_the_answer_is_401(live_testapp):
    tokens = register(live_testapp).json["tokens"]
    newest = refresh(live_testapp, tokens["refresh_token"]).json["tokens"]
    refresh(live_testapp, tokens["refresh_token"], status=401)
    refresh(live_testapp, newest["refresh_token"], status=401)


def test_concurrent_refreshes_of_one_token_yield_one_pair(live_testapp):
    tokens = register(live_testapp).json["tokens"]
    barrier = threading.Barrier(4)
    results = []

    def attempt():
        barrier.wait()
        results.append(refresh(live_testapp, tokens["refresh_token"], status="*"))

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_int for r in results) == [200, 401, 401, 401]
    # the token was presented more than once: the winner's new token is revoked as well
    winner = next(r for r in results if r.status_int == 200).json["tokens"]
    refresh(live_testapp, winner["refresh_token"], status=401)


def test_refresh_rejects_garbage_and_access_tokens(testapp):
    tokens = register(testapp).json["tokens"]
    refresh(testapp, "not-a-token", status=401)
    refresh(testapp, tokens["access_token"], status=401)
    testapp.post_json("/api/v1/auth/refresh", {}, status=422)


def test_logout_revokes_the_family(testapp):
    tokens = register(testapp).json["tokens"]
    rotated = refresh(testapp, tokens["refresh_token"]).json["tokens"]
    testapp.post_json(
        "/api/v1/auth/logout", {"refresh_token": rotated["refresh_token"]}, status=204
    )
    refresh(testapp, rotated["refresh_token"], status=401)
    testapp.post_json("/api/v1/auth/logout", {"refresh_token": "garbage"}, status=401)


def test_change_password_ends_every_old_token(testapp, dbsession):
    email = unique_email()
    first = register(testapp, email=email).json["tokens"]
    second = login(testapp, email).json["tokens"]
    testapp.post_json(
        "/api/v1/auth/change-password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(first["access_token"]),
        status=204,
    )
    for tokens in (first, second):
        r = testapp.get("/api/v1/auth/profile", headers=bearer(tokens["access_token"]), status=401)
        assert r.json["error"]["type"] == "authentication_error"
        refresh(testapp, tokens["refresh_token"], status=401)
    login(testapp, email, PASSWORD, status=401)
    fresh = login(testapp, email, NEW_PASSWORD).json["tokens"]
    testapp.get("/api/v1/auth/profile", headers=bearer(fresh["access_token"]))
    actions = dbsession.scalars(sa.select(AuditEntry.action)).all()
    assert "password.changed" in actions


def test_change_password_checks_the_current_one(testapp):
    tokens = register(testapp).json["tokens"]
    r = testapp.post_json(
        "/api/v1/auth/change-password",
        {"current_password": "certainly not it", "new_password": NEW_PASSWORD},
        headers=bearer(tokens["access_token"]),
        status=422,
    )
    assert r.json["error"]["details"] == [{"field": "current_password", "message": "is incorrect"}]
    testapp.get("/api/v1/auth/profile", headers=bearer(tokens["access_token"]))
    testapp.post_json(
        "/api/v1/auth/change-password",
        {"current_password": PASSWORD, "new_password": "short"},
        headers=bearer(tokens["access_token"]),
        status=422,
    )


def test_an_api_key_may_not_change_the_password(testapp, dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    _row, key = create_api_key(dbsession, merchant)
    r = testapp.post_json(
        "/api/v1/auth/change-password",
        {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(key),
        status=403,
    )
    assert r.json["error"]["type"] == "permission_error"


def test_auth_endpoints_need_credentials(testapp):
    for method, path in [
        ("get", "/api/v1/auth/profile"),
        ("patch_json", "/api/v1/auth/profile"),
        ("post_json", "/api/v1/auth/change-password"),
    ]:
        r = (
            getattr(testapp, method)(path, status=401)
            if method == "get"
            else getattr(testapp, method)(path, {}, status=401)
        )
        assert r.json["error"]["code"] == "authentication_required"
        assert r.headers["WWW-Authenticate"] == "Bearer"
