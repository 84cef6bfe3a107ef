"""Dashboard plumbing over real HTTP: sessions, cookies, CSRF, security headers."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from payportal.merchants.models import DashboardSession, Merchant
from payportal.portal.sessions import IDLE_TIMEOUT, MERCHANT, cookie_name, start_session
from tests.factories import create_merchant, create_payment


def test_dashboard_entry_sends_visitors_to_sign_in(testapp):
    response = testapp.get("/dashboard/", status=303)
    assert response.location == "http://localhost/dashboard/login"


def test_a_page_without_a_session_redirects_to_sign_in_and_back(testapp):
    response = testapp.get("/dashboard/payments?status=failed", status=303)
    assert response.location.startswith("http://localhost/dashboard/login?next=")
    assert "/dashboard/payments?status=failed" in response.location.replace("%26", "&")


def test_a_signed_in_merchant_reaches_the_overview(browser):
    response = browser.get("/dashboard/", status=303)
    assert response.location == "http://localhost/dashboard/home"
    page = browser.get("/dashboard/home")
    assert "Overview" in page.text
    assert browser.merchant.email in page.text


def test_security_headers_on_every_html_page(browser, testapp):
    for page in (browser.get("/dashboard/home"), testapp.get("/dashboard/nowhere", status=404)):
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "object-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    # the test environment is served over plain http: no HSTS there
    assert "Strict-Transport-Security" not in page.headers


def test_signed_in_pages_are_never_cached(browser):
    assert browser.get("/dashboard/home").headers["Cache-Control"] == "no-store"


def test_a_revoked_session_is_signed_out(browser, dbsession):
    dbsession.execute(sa.update(DashboardSession).values(revoked_at=sa.func.now()))
    assert browser.get("/dashboard/home", status=303).location.startswith(
        "http://localhost/dashboard/login"
    )


def test_an_idle_session_expires(browser, dbsession):
    idle_since = dt.datetime.now(dt.UTC) - IDLE_TIMEOUT - dt.timedelta(minutes=1)
    dbsession.execute(sa.update(DashboardSession).values(last_seen_at=idle_since))
    browser.get("/dashboard/home", status=303)


def test_an_expired_session_is_signed_out(browser, dbsession):
    dbsession.execute(
        sa.update(DashboardSession).values(expires_at=sa.func.now() - sa.text("interval '1s'"))
    )
    browser.get("/dashboard/home", status=303)


def test_a_password_change_anywhere_ends_older_sessions(browser, dbsession):
    # an API password change stamps the merchant; sessions that began earlier stop working
    dbsession.execute(
        sa.update(Merchant)
        .where(Merchant.id == browser.merchant.id)
        .values(password_changed_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    )
    browser.get("/dashboard/home", status=303)


def test_a_made_up_cookie_is_nobody(testapp, settings):
    testapp.set_cookie(cookie_name(settings, MERCHANT), "not-a-session")
    testapp.get("/dashboard/home", status=303)


def test_the_session_cookie_never_authenticates_the_api(browser):
    # the API reads bearer credentials only, so a cookie can never be used for CSRF against it
    response = browser.get("/api/v1/payments", status=401)
    assert response.json["error"]["type"] == "authentication_error"


def test_the_session_is_only_stored_as_a_digest(testapp, dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    raw_id, row = start_session(dbsession, merchant_id=merchant.id)
    stored = dbsession.execute(sa.select(DashboardSession.digest)).scalars().all()
    assert raw_id not in stored
    assert row.digest in stored


def test_last_seen_moves_at_most_once_a_minute(browser, dbsession):
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    dbsession.execute(sa.update(DashboardSession).values(last_seen_at=long_ago))
    browser.get("/dashboard/home")
    seen = dbsession.execute(sa.select(DashboardSession.last_seen_at)).scalar_one()
    assert seen > long_ago + dt.timedelta(minutes=4)


def test_post_without_csrf_token_is_refused_and_changes_nothing(browser, dbsession, settings):
    payment = create_payment(dbsession, settings, browser.merchant, status="completed")
    path = f"/dashboard/payments/{payment.reference}/refund"
    response = browser.post(path, {"kind": "full"}, csrf=False, status=403)
    assert "form has expired" in response.text
    dbsession.refresh(payment)
    assert payment.amount_refunded == 0
    assert str(payment.status) == "completed"


def test_post_with_a_wrong_csrf_token_is_refused(browser, dbsession, settings):
    payment = create_payment(dbsession, settings, browser.merchant, status="completed")
    path = f"/dashboard/payments/{payment.reference}/refund"
    browser.post(path, {"kind": "full", "csrf_token": "x" * 43}, status=403)
    dbsession.refresh(payment)
    assert payment.amount_refunded == 0


def test_another_sessions_csrf_token_does_not_work(sign_in, dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    _other_raw, other = start_session(dbsession, merchant_id=merchant.id)
    browser = sign_in(merchant=merchant)
    payment = create_payment(dbsession, settings, merchant, status="completed")
    browser.post(
        f"/dashboard/payments/{payment.reference}/refund",
        {"kind": "full", "csrf_token": other.csrf_token},
        status=403,
    )


def test_the_csrf_header_works_like_the_field(browser, dbsession, settings):
    payment = create_payment(dbsession, settings, browser.merchant, status="completed")
    browser.app.post(
        f"/dashboard/payments/{payment.reference}/refund",
        {"kind": "full"},
        headers={"X-CSRF-Token": browser.csrf},
        status=303,
    )
    dbsession.refresh(payment)
    assert str(payment.status) == "refunded"


def test_a_cross_site_origin_is_refused_even_with_the_token(browser, dbsession, settings):
    payment = create_payment(dbsession, settings, browser.merchant, status="completed")
    browser.post(
        f"/dashboard/payments/{payment.reference}/refund",
        {"kind": "full"},
        headers={"Origin": "https://evil.example"},
        status=403,
    )
    dbsession.refresh(payment)
    assert payment.amount_refunded == 0


def test_a_page_renders_from_compiled_templates_without_searching_again(
    browser, wsgi_app, monkeypatch
):
    from pyramid_jinja2 import IJinja2Environment

    environment = wsgi_app.registry.getUtility(IJinja2Environment, name=".jinja2")
    browser.get("/dashboard/home")
    searched = []
    get_source = environment.loader.get_source

    def spy(env, name):
        searched.append(name)
        return get_source(env, name)

    monkeypatch.setattr(environment.loader, "get_source", spy)
    assert "Overview" in browser.get("/dashboard/home").text
    assert searched == []  # not even a miss under the view's package
