"""Sign up, sign in, sign out, settings and API keys in the dashboard, over real HTTP."""

from __future__ import annotations

import re

import sqlalchemy as sa
import webtest

from payportal.merchants.models import (
    ApiKey,
    AuditEntry,
    DashboardSession,
    LoginFailure,
    Merchant,
    PasswordResetToken,
    RefreshToken,
)
from payportal.merchants.services import request_password_reset
from payportal.merchants.throttle import MAX_FAILURES
from payportal.portal.sessions import MERCHANT, cookie_name
from tests.factories import DEFAULT_PASSWORD, create_api_key, create_merchant

SIGNUP = {
    "name": "Ada Lovelace",
    "email": "Ada@Example.com",
    "password": "a long enough password",
    "merchant_type": "business",
    "business_name": "Analytical Engines",
    "country": "gb",
}


def csrf_of(page) -> str:
    return page.html.find("input", attrs={"name": "csrf_token"})["value"]


def sign_in_by_form(testapp, email, password=DEFAULT_PASSWORD, **extra):
    page = testapp.get("/dashboard/login")
    if page.status_int == 303:  # already signed in: any page's form carries the token
        page = testapp.get("/dashboard/settings")
    return testapp.post(
        "/dashboard/login",
        {"email": email, "password": password, "csrf_token": csrf_of(page), **extra},
        expect_errors=True,
    )


def session_cookie(testapp, settings):
    return testapp.cookies.get(cookie_name(settings, MERCHANT))


def test_sign_up_creates_a_pending_account_and_signs_in(testapp, dbsession, settings):
    page = testapp.get("/dashboard/signup")
    for name in ("name", "email", "password", "merchant_type", "business_name", "country"):
        assert page.html.find("label", attrs={"for": f"f-{name}"}) is not None
    response = testapp.post("/dashboard/signup", {**SIGNUP, "csrf_token": csrf_of(page)})
    assert response.status_int == 303
    merchant = dbsession.execute(sa.select(Merchant)).scalar_one()
    assert (merchant.email, merchant.status, merchant.country) == (
        "ada@example.com",
        "pending",
        "GB",
    )
    home = response.follow()
    assert "Welcome to payportal" in home.text
    assert "awaiting approval" in home.text


def test_sign_up_errors_are_shown_by_their_fields(testapp, dbsession):
    page = testapp.get("/dashboard/signup")
    response = testapp.post(
        "/dashboard/signup",
        {**SIGNUP, "password": "short", "website": "ftp://x", "csrf_token": csrf_of(page)},
        status=422,
    )
    assert response.html.find(id="e-password") is not None
    assert response.html.find(id="e-website") is not None
    assert response.html.find(id="f-email")["value"] == "Ada@Example.com"
    # the password is never sent back into the page
    assert "short" not in str(response.html.find(id="f-password"))
    assert dbsession.execute(sa.select(sa.func.count()).select_from(Merchant)).scalar() == 0


def test_sign_up_with_a_taken_email_names_the_field(testapp, dbsession, settings):
    create_merchant(dbsession, settings, email="ada@example.com")
    page = testapp.get("/dashboard/signup")
    response = testapp.post(
        "/dashboard/signup", {**SIGNUP, "csrf_token": csrf_of(page)}, status=409
    )
    assert "already registered" in response.html.find(id="e-email").text


def test_sign_up_without_the_csrf_cookie_is_refused(testapp, dbsession):
    testapp.post("/dashboard/signup", {**SIGNUP, "csrf_token": "x" * 43}, status=403)
    assert dbsession.execute(sa.select(sa.func.count()).select_from(Merchant)).scalar() == 0


def test_sign_in_sets_a_fresh_http_only_lax_cookie(testapp, dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    response = sign_in_by_form(testapp, merchant.email)
    assert response.status_int == 303
    assert response.location == "http://localhost/dashboard/home"
    set_cookie = [v for k, v in response.headerlist if k == "Set-Cookie" and "payportal=" in v]
    assert len(set_cookie) == 1
    cookie = set_cookie[0].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    # the test environment is plain http: Secure and the __Host- prefix are for production
    assert "secure" not in cookie
    assert testapp.get("/dashboard/home").status_int == 200


def test_sign_in_replaces_the_previous_session(testapp, dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    sign_in_by_form(testapp, merchant.email)
    first = session_cookie(testapp, settings)
    sign_in_by_form(testapp, merchant.email)
    second = session_cookie(testapp, settings)
    assert first != second
    rows = dbsession.execute(sa.select(DashboardSession)).scalars().all()
    assert sorted(r.revoked_at is None for r in rows) == [False, True]


def test_sign_in_goes_back_to_the_page_asked_for(testapp, dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    response = sign_in_by_form(testapp, merchant.email, next="/dashboard/payments?status=failed")
    assert response.location == "http://localhost/dashboard/payments?status=failed"


def test_sign_in_never_redirects_to_another_site(testapp, dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    for target in ("https://evil.example/", "//evil.example/x", "/api/v1/payments"):
        response = sign_in_by_form(testapp, merchant.email, next=target)
        assert response.location == "http://localhost/dashboard/home"


def test_wrong_password_is_one_message_and_counted(testapp, dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    wrong = sign_in_by_form(testapp, merchant.email, password="not the password")
    unknown = sign_in_by_form(testapp, "nobody@example.com", password="whatever it is")
    assert wrong.status_int == unknown.status_int == 401
    assert "Email or password is incorrect." in wrong.text
    assert "Email or password is incorrect." in unknown.text
    assert session_cookie(testapp, settings) is None
    failures = dbsession.execute(sa.select(sa.func.count()).select_from(LoginFailure)).scalar()
    assert failures == 2


def test_sign_in_is_throttled_like_the_api(testapp, dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    for _ in range(MAX_FAILURES):
        assert sign_in_by_form(testapp, merchant.email, password="wrong guess").status_int == 401
    blocked = sign_in_by_form(testapp, merchant.email)  # even the right password now waits
    assert blocked.status_int == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Too many failed attempts" in blocked.text
    assert session_cookie(testapp, settings) is None


def test_a_suspended_merchant_can_sign_in_and_read(testapp, dbsession, settings):
    merchant = create_merchant(dbsession, settings, status="suspended")
    assert sign_in_by_form(testapp, merchant.email).status_int == 303
    assert "Your account is suspended" in testapp.get("/dashboard/home").text


def test_sign_out_revokes_the_session(browser, dbsession):
    browser.post("/dashboard/logout", status=303)
    assert dbsession.execute(sa.select(DashboardSession.revoked_at)).scalar_one() is not None
    browser.get("/dashboard/home", status=303)


def test_sign_out_needs_the_csrf_token(browser, dbsession):
    browser.post("/dashboard/logout", csrf=False, status=403)
    assert dbsession.execute(sa.select(DashboardSession.revoked_at)).scalar_one() is None


def test_a_signed_in_visitor_skips_the_sign_in_page(browser):
    assert browser.get("/dashboard/login", status=303).location.endswith("/dashboard/home")


def test_settings_show_and_save_the_profile(browser, dbsession):
    page = browser.get("/dashboard/settings")
    assert page.html.find(id="f-name")["value"] == browser.merchant.name
    browser.post(
        "/dashboard/settings/profile",
        {"name": "New Name Ltd", "phone": "+44 20 7946 0000", "website": "", "address": ""},
        status=303,
    )
    dbsession.refresh(browser.merchant)
    assert browser.merchant.name == "New Name Ltd"
    assert browser.merchant.phone == "+44 20 7946 0000"


def test_profile_errors_stay_on_the_form(browser, dbsession):
    page = browser.post("/dashboard/settings/profile", {"name": "", "website": "nope"}, status=422)
    assert page.html.find(id="e-website") is not None
    assert page.html.find(id="e-name") is not None


def test_change_password_signs_out_other_browsers(browser, testapp, dbsession, settings):
    merchant = browser.merchant
    elsewhere = webtest.TestApp(testapp.app, extra_environ=testapp.extra_environ)
    assert sign_in_by_form(elsewhere, merchant.email).status_int == 303
    response = browser.post(
        "/dashboard/settings/password",
        {"current_password": DEFAULT_PASSWORD, "new_password": "an even longer password"},
    )
    assert response.status_int == 303
    assert "Other browsers were signed out" in response.follow().text
    live = dbsession.execute(
        sa.select(sa.func.count())
        .select_from(DashboardSession)
        .where(DashboardSession.revoked_at.is_(None))
    ).scalar()
    assert live == 1  # only the browser that changed it, on a brand-new session
    tokens_left = dbsession.execute(
        sa.select(sa.func.count())
        .select_from(RefreshToken)
        .where(RefreshToken.revoked_at.is_(None))
    ).scalar()
    assert tokens_left == 0
    elsewhere.get("/dashboard/home", status=303)  # the other browser is signed out
    assert sign_in_by_form(elsewhere, merchant.email, "an even longer password").status_int == 303


def test_change_password_with_a_wrong_current_password(browser, dbsession):
    page = browser.post(
        "/dashboard/settings/password",
        {"current_password": "not it at all", "new_password": "an even longer password"},
        status=422,
    )
    assert page.html.find(id="e-current_password") is not None
    assert dbsession.execute(sa.select(sa.func.count()).select_from(LoginFailure)).scalar() == 1
    browser.get("/dashboard/home")  # still signed in


def test_create_an_api_key_shows_it_once(browser, dbsession):
    page = browser.post("/dashboard/api-keys", {"name": "Checkout server"}, status=201)
    key = page.html.find("input", attrs={"data-secret": True})["value"]
    assert key.startswith("sk_")
    assert page.html.find("button", attrs={"data-copy": True}) is not None
    row = dbsession.execute(sa.select(ApiKey)).scalar_one()
    assert row.name == "Checkout server"
    # the key works on the API, and the list never shows it again
    browser.app.get("/api/v1/payments", headers={"Authorization": f"Bearer {key}"}, status=200)
    assert key not in browser.get("/dashboard/api-keys").text


def test_api_key_name_is_required(browser, dbsession):
    page = browser.post("/dashboard/api-keys", {"name": ""}, status=422)
    assert page.html.find(id="e-name") is not None
    assert dbsession.execute(sa.select(sa.func.count()).select_from(ApiKey)).scalar() == 0


def test_revoke_an_api_key(browser, dbsession):
    page = browser.post("/dashboard/api-keys", {"name": "old"}, status=201)
    key = page.html.find("input", attrs={"data-secret": True})["value"]
    row = dbsession.execute(sa.select(ApiKey)).scalar_one()
    browser.post(f"/dashboard/api-keys/{row.id}/revoke", status=303)
    browser.app.get("/api/v1/payments", headers={"Authorization": f"Bearer {key}"}, status=401)
    assert "No API keys yet" in browser.get("/dashboard/api-keys").text
    actions = dbsession.execute(sa.select(AuditEntry.action)).scalars().all()
    assert "api_key.revoked" in actions


def test_another_merchants_api_key_cannot_be_revoked(browser, dbsession, settings):
    other = create_merchant(dbsession, settings)
    row, _key = create_api_key(dbsession, other)
    browser.post(f"/dashboard/api-keys/{row.id}/revoke", status=404)
    dbsession.refresh(row)
    assert row.revoked_at is None


def test_developers_leads_to_api_keys(browser):
    assert browser.get("/dashboard/developers", status=303).location.endswith("/dashboard/api-keys")


def test_forgot_password_answers_the_same_for_any_address(testapp, dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    answers = []
    for email in (merchant.email, "nobody@example.com"):
        page = testapp.get("/dashboard/forgot-password")
        response = testapp.post(
            "/dashboard/forgot-password", {"email": email, "csrf_token": csrf_of(page)}
        )
        answers.append(response.html.find(role="status").text.replace(email, "<email>"))
    assert answers[0] == answers[1]
    tokens = dbsession.execute(sa.select(sa.func.count()).select_from(PasswordResetToken))
    assert tokens.scalar() == 1


def test_reset_password_from_the_mailed_link(browser, testapp, dbsession, settings):
    message = request_password_reset(dbsession, settings, browser.merchant.email)
    link = re.search(r"(/dashboard/reset-password\?token=\S+)", message.get_content()).group(1)
    assert message["To"] == browser.merchant.email
    elsewhere = webtest.TestApp(testapp.app, extra_environ=testapp.extra_environ)
    page = elsewhere.get(link)
    token = page.html.find("input", attrs={"name": "token"})["value"]
    response = elsewhere.post(
        "/dashboard/reset-password",
        {"token": token, "new_password": "a brand new password", "csrf_token": csrf_of(page)},
        status=303,
    )
    assert "Sign in with the new one." in response.follow().text
    browser.get("/dashboard/home", status=303)  # the signed-in browser is signed out
    assert (
        sign_in_by_form(elsewhere, browser.merchant.email, "a brand new password").status_int == 303
    )
    again = elsewhere.get(link)
    reused = elsewhere.post(
        "/dashboard/reset-password",
        {"token": token, "new_password": "yet another password", "csrf_token": csrf_of(again)},
        status=422,
    )
    assert "invalid, used or expired" in reused.text
