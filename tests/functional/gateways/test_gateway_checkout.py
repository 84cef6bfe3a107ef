"""/checkout/<reference>: the hosted test checkout a customer sees, its buttons, its CSRF wall
and its security headers."""

from __future__ import annotations

import pytest
import webtest

from payportal.db import TEST_CONNECTION_KEY
from payportal.gateways.checkout import CSRF_COOKIE, checkout_token
from tests.factories import create_merchant
from tests.functional.gateways.conftest import deliveries, event_types, reload, transitions


def checkout(reference: str) -> str:
    return f"/checkout/{reference}"


@pytest.fixture
def shop(dbsession, settings):
    return create_merchant(
        dbsession, settings, name="Ada Lovelace", business_name="Analytical Teas"
    )


def test_the_page_shows_merchant_amount_description_and_both_buttons(testapp, shop, make_payment):
    payment = make_payment(
        shop, amount=10_050, currency="USD", description="Two tins of Earl Grey — loose leaf"
    )

    page = testapp.get(checkout(payment.reference))

    assert page.content_type == "text/html"
    assert "Analytical Teas" in page.text
    assert "$100.50" in page.text
    assert "Two tins of Earl Grey — loose leaf" in page.text
    buttons = {b.get("value"): b.text.strip() for b in page.html.select("form button")}
    assert buttons == {"pay": "Pay $100.50", "decline": "Decline"}
    assert page.html.select_one("form")["method"] == "post"


def test_amounts_are_formatted_in_their_currency(testapp, shop, make_payment):
    yen = make_payment(shop, amount=500, currency="JPY")
    naira = make_payment(shop, amount=1_234_567, currency="NGN")

    assert "¥500" in testapp.get(checkout(yen.reference)).text
    assert "NGN12,345.67" in testapp.get(checkout(naira.reference)).text.replace("\xa0", "")


def test_the_description_is_escaped(testapp, shop, make_payment):
    payment = make_payment(shop, description='<script>alert("x")</script>')

    page = testapp.get(checkout(payment.reference))

    assert "<script>alert" not in page.text
    assert "&lt;script&gt;" in page.text


def test_pay_completes_the_payment_through_the_simulation_path(
    testapp, dbsession, shop, make_payment
):
    payment = make_payment(shop)
    page = testapp.get(checkout(payment.reference))

    done = page.forms[0].submit("outcome", value="pay", status=303).follow()

    assert "Paid" in done.text
    assert not done.html.select("form button")
    assert reload(dbsession, payment).status == "completed"
    assert transitions(dbsession, payment)[-1] == ("pending", "completed", "webhook:simulation")
    assert event_types(dbsession, payment) == ["payment.completed"]
    assert deliveries(dbsession, "simulation")[0].payment_id == payment.id


def test_decline_fails_the_payment(testapp, dbsession, shop, make_payment):
    payment = make_payment(shop)
    page = testapp.get(checkout(payment.reference))

    done = page.forms[0].submit("outcome", value="decline", status=303).follow()

    assert "Payment declined" in done.text
    assert "Declined at the test checkout" in done.text
    payment = reload(dbsession, payment)
    assert (payment.status, payment.failure_code) == ("failed", "simulated_decline")


def test_a_second_click_after_the_first_changes_nothing(testapp, dbsession, shop, make_payment):
    payment = make_payment(shop)
    form = testapp.get(checkout(payment.reference)).forms[0]
    form.submit("outcome", value="pay", status=303)

    form.submit("outcome", value="decline", status=303)

    assert reload(dbsession, payment).status == "completed"
    assert event_types(dbsession, payment) == ["payment.completed"]


def test_a_post_without_the_token_is_403_and_changes_nothing(
    testapp, dbsession, shop, make_payment
):
    payment = make_payment(shop)
    testapp.get(checkout(payment.reference))  # the browser has its cookie

    page = testapp.post(checkout(payment.reference), {"outcome": "pay"}, status=403)

    assert "expired or was not sent from this page" in page.text
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert reload(dbsession, payment).status == "pending"
    assert deliveries(dbsession) == []


def test_a_token_from_another_browser_is_403(
    testapp, wsgi_app, connection, dbsession, shop, make_payment
):
    payment = make_payment(shop)
    token = testapp.get(checkout(payment.reference)).forms[0]["csrf_token"].value
    attacker = webtest.TestApp(
        wsgi_app, extra_environ={TEST_CONNECTION_KEY: connection, "HTTP_HOST": "localhost"}
    )
    attacker.get(checkout(payment.reference))  # a cookie of its own

    attacker.post(checkout(payment.reference), {"outcome": "pay", "csrf_token": token}, status=403)

    assert reload(dbsession, payment).status == "pending"


def test_a_token_for_another_payment_is_403(testapp, dbsession, shop, make_payment):
    mine = make_payment(shop)
    other = make_payment(shop)
    token = testapp.get(checkout(other.reference)).forms[0]["csrf_token"].value

    testapp.post(checkout(mine.reference), {"outcome": "pay", "csrf_token": token}, status=403)

    assert reload(dbsession, mine).status == "pending"


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        ("completed", "Paid"),
        ("failed", "Payment declined"),
        ("expired", "Link expired"),
        ("cancelled", "Cancelled"),
        ("refunded", "Refunded"),
    ],
)
def test_a_finished_payment_shows_its_state_instead_of_buttons(
    testapp, shop, make_payment, status, shown
):
    payment = make_payment(shop, status=status)

    page = testapp.get(checkout(payment.reference))

    assert shown in page.html.select_one("[role=status]").text
    assert not page.html.select("form")


def test_a_pending_payment_past_its_expiry_shows_expired_and_cannot_be_paid(
    testapp, dbsession, settings, shop, make_payment
):
    payment = make_payment(shop, expires_in=-60)
    testapp.get(checkout(make_payment(shop).reference))  # a payable page sets the cookie

    page = testapp.get(checkout(payment.reference))

    assert "Link expired" in page.text
    assert not page.html.select("form")
    # even a valid token for it gets no simulated answer through
    token = checkout_token(settings, testapp.cookies[CSRF_COOKIE], payment.reference)
    testapp.post(checkout(payment.reference), {"outcome": "pay", "csrf_token": token}, status=303)
    assert reload(dbsession, payment).status == "pending"


def test_an_inactive_merchant_shows_no_buttons(testapp, dbsession, settings, make_payment):
    merchant = create_merchant(dbsession, settings, status="suspended")
    payment = make_payment(merchant)

    page = testapp.get(checkout(payment.reference))

    assert "cannot take payments" in page.text
    assert not page.html.select("form")


def test_an_unknown_reference_is_404(testapp):
    testapp.get(checkout("pay_nosuchpaymentatall"), status=404)
    testapp.get(checkout("not%20a%20reference"), status=404)


def test_security_headers(testapp, shop, make_payment):
    payment = make_payment(shop)

    headers = testapp.get(checkout(payment.reference)).headers

    policy = headers["Content-Security-Policy"]
    assert "script-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "object-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/checkout" in cookie


def test_the_stylesheet_is_served(testapp):
    css = testapp.get("/static/css/checkout.css")

    assert css.content_type == "text/css"
    assert ".checkout-card" in css.text


def test_with_simulation_off_there_are_no_buttons_and_posts_are_404(
    restricted_testapp, dbsession, shop, make_payment
):
    payment = make_payment(shop)

    page = restricted_testapp.get(checkout(payment.reference))

    assert "Awaiting payment" in page.text
    assert "Test mode" not in page.text
    assert not page.html.select("form")
    restricted_testapp.post(checkout(payment.reference), {"outcome": "pay"}, status=404)
    assert reload(dbsession, payment).status == "pending"
