"""Outside development the cookies are __Host- and Secure, and every page asks for HSTS."""

from __future__ import annotations

import pytest
import webtest

from payportal.db import TEST_CONNECTION_KEY
from tests.conftest import TEST_SETTINGS
from tests.factories import DEFAULT_PASSWORD, create_merchant, create_payment


@pytest.fixture(scope="module")
def production_app(database_url):
    from payportal import main

    app = main(
        {},
        **{
            **TEST_SETTINGS,
            "sqlalchemy.url": database_url,
            "payportal.environment": "production",
            "payportal.allow_simulation": "false",
        },
    )
    yield app
    app.registry.dbengine.dispose()


@pytest.fixture
def https_app(production_app, connection):
    return webtest.TestApp(
        production_app,
        extra_environ={
            TEST_CONNECTION_KEY: connection,
            "HTTP_HOST": "pay.example.com",
            "wsgi.url_scheme": "https",
        },
    )


def cookie_headers(response, name):
    return [v for k, v in response.headerlist if k == "Set-Cookie" and v.startswith(name + "=")]


def test_production_pages_carry_hsts_and_host_cookies(https_app, dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    page = https_app.get("/dashboard/login")
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    (csrf_cookie,) = cookie_headers(page, "__Host-payportal-csrf")
    assert "secure" in csrf_cookie.lower() and "path=/" in csrf_cookie.lower()
    token = page.html.find("input", attrs={"name": "csrf_token"})["value"]

    response = https_app.post(
        "/dashboard/login",
        {"email": merchant.email, "password": DEFAULT_PASSWORD, "csrf_token": token},
        status=303,
    )
    (session_cookie,) = cookie_headers(response, "__Host-payportal")
    lowered = session_cookie.lower()
    assert "secure" in lowered and "httponly" in lowered and "samesite=lax" in lowered
    assert "domain=" not in lowered
    home = https_app.get("/dashboard/home")
    assert merchant.email in home.text


def test_production_refuses_a_cross_site_post_with_a_stolen_token(https_app, dbsession, settings):
    create_merchant(dbsession, settings)
    page = https_app.get("/dashboard/login")
    token = page.html.find("input", attrs={"name": "csrf_token"})["value"]
    https_app.post(
        "/dashboard/login",
        {"email": "x@example.com", "password": "whatever", "csrf_token": token},
        headers={"Origin": "https://evil.example"},
        status=403,
    )


def test_without_simulation_the_buttons_and_the_path_are_gone(https_app, dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    payment = create_payment(dbsession, settings, merchant)
    page = https_app.get("/dashboard/login")
    token = page.html.find("input", attrs={"name": "csrf_token"})["value"]
    https_app.post(
        "/dashboard/login",
        {"email": merchant.email, "password": DEFAULT_PASSWORD, "csrf_token": token},
        status=303,
    )
    detail = https_app.get(f"/dashboard/payments/{payment.reference}")
    assert "Simulate completed" not in detail.text
    token = detail.html.find("input", attrs={"name": "csrf_token"})["value"]
    https_app.post(
        f"/dashboard/payments/{payment.reference}/simulate",
        {"outcome": "completed", "csrf_token": token},
        status=404,
    )
    dbsession.refresh(payment)
    assert str(payment.status) == "pending"
