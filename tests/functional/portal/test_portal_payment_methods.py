"""Payment methods in the dashboard: list, add per type, edit, default, delete after asking."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from payportal.events.models import OutboxEvent
from payportal.payment_methods.models import PaymentMethod
from tests.factories import create_merchant, create_payment_method

NEXT_YEAR = str(dt.date.today().year + 2)


def live_methods(dbsession, merchant):
    return (
        dbsession.execute(
            sa.select(PaymentMethod)
            .where(PaymentMethod.merchant_id == merchant.id, PaymentMethod.deleted_at.is_(None))
            .order_by(PaymentMethod.created_at)
        )
        .scalars()
        .all()
    )


def test_empty_list_tells_what_to_do(browser):
    page = browser.get("/dashboard/payment-methods")
    assert "No payment methods yet" in page.text
    assert "/dashboard/payment-methods/new" in page.text


def test_add_a_card(browser, dbsession):
    form = browser.get("/dashboard/payment-methods/new?type=card")
    for name in ("name", "number", "exp_month", "exp_year", "holder_name"):
        assert form.html.find("label", attrs={"for": f"f-{name}"}) is not None
    response = browser.post(
        "/dashboard/payment-methods/new?type=card",
        {"name": "Company Visa", "number": "4242 4242 4242 4242", "exp_month": "12",
         "exp_year": NEXT_YEAR, "holder_name": "Ada"},
    )  # fmt: skip
    assert response.status_int == 303
    (method,) = live_methods(dbsession, browser.merchant)
    assert (method.type, method.brand, method.last4, method.is_default) == (
        "card",
        "visa",
        "4242",
        True,
    )
    page = response.follow()
    assert "Visa •••• 4242" in page.text
    assert "4242424242424242" not in page.text
    assert dbsession.execute(sa.select(OutboxEvent.type)).scalar_one() == "payment_method.created"


def test_a_bad_card_number_is_refused_by_the_field_and_not_echoed(browser, dbsession):
    page = browser.post(
        "/dashboard/payment-methods/new?type=card",
        {"name": "Typo", "number": "4242424242424241", "exp_month": "12", "exp_year": NEXT_YEAR},
        status=422,
    )
    assert page.html.find(id="e-number") is not None
    assert "4242424242424241" not in page.text
    assert page.html.find(id="f-name")["value"] == "Typo"
    assert live_methods(dbsession, browser.merchant) == []


def test_an_expired_card_is_refused(browser, dbsession):
    page = browser.post(
        "/dashboard/payment-methods/new?type=card",
        {"name": "Old", "number": "4242424242424242", "exp_month": "1", "exp_year": "2020"},
        status=422,
    )
    assert "expired" in page.text
    assert live_methods(dbsession, browser.merchant) == []


def test_a_month_that_is_not_a_number(browser):
    page = browser.post(
        "/dashboard/payment-methods/new?type=card",
        {"name": "X", "number": "4242424242424242", "exp_month": "May", "exp_year": NEXT_YEAR},
        status=422,
    )
    assert "whole number" in page.html.find(id="e-exp_month").text


def test_add_each_other_type(browser, dbsession):
    forms = {
        "bank_account": {"bank_name": "First Bank", "account_number": "GB82 WEST 1234 5698 7654 32",
                         "account_holder_name": "Ada Ltd"},
        "mobile_money": {"provider": "mpesa", "phone_number": "+254712345678"},
        "paypal": {"external_provider": "paypal", "external_id": "ada@example.com"},
        "crypto": {"external_provider": "coinbase", "external_id": "wallet-1"},
        "stripe": {"external_provider": "stripe", "external_id": "pm_123"},
    }  # fmt: skip
    for method_type, fields in forms.items():
        form = browser.get(f"/dashboard/payment-methods/new?type={method_type}")
        for name in fields:
            assert form.html.find("label", attrs={"for": f"f-{name}"}) is not None
        browser.post(
            f"/dashboard/payment-methods/new?type={method_type}",
            {"name": method_type, **fields},
            status=303,
        )
    assert [m.type for m in live_methods(dbsession, browser.merchant)] == list(forms)
    page = browser.get("/dashboard/payment-methods").text
    assert "First Bank •••• 5432" in page
    assert "+254712345678" not in page and "GB82" not in page


def test_missing_fields_of_a_type(browser):
    page = browser.post(
        "/dashboard/payment-methods/new?type=mobile_money", {"name": "M"}, status=422
    )
    assert page.html.find(id="e-provider") is not None
    assert page.html.find(id="e-phone_number") is not None


def test_edit_name_status_and_metadata(browser, dbsession, settings, wsgi_app):
    method = create_payment_method(dbsession, wsgi_app.registry.keyring, browser.merchant)
    page = browser.get(f"/dashboard/payment-methods/{method.id}")
    assert page.html.find(id="f-name")["value"] == method.name
    browser.post(
        f"/dashboard/payment-methods/{method.id}",
        {"name": "Renamed", "status": "inactive", "metadata": "team=ops\ncost_center = 42"},
        status=303,
    )
    dbsession.refresh(method)
    assert (method.name, method.status) == ("Renamed", "inactive")
    assert method.metadata_ == {"team": "ops", "cost_center": "42"}


def test_edit_errors_stay_on_the_form(browser, dbsession, wsgi_app):
    method = create_payment_method(dbsession, wsgi_app.registry.keyring, browser.merchant)
    page = browser.post(
        f"/dashboard/payment-methods/{method.id}",
        {"name": "", "status": "active", "metadata": "no equals sign"},
        status=422,
    )
    assert "key=value" in page.html.find(id="e-metadata").text
    dbsession.refresh(method)
    assert method.name == "Company card"


def test_set_default(browser, dbsession, wsgi_app):
    keyring = wsgi_app.registry.keyring
    first = create_payment_method(dbsession, keyring, browser.merchant)
    second = create_payment_method(dbsession, keyring, browser.merchant, name="Second")
    assert (first.is_default, second.is_default) == (True, False)
    browser.post(f"/dashboard/payment-methods/{second.id}/default", status=303)
    dbsession.refresh(first)
    dbsession.refresh(second)
    assert (first.is_default, second.is_default) == (False, True)


def test_delete_asks_first_then_soft_deletes(browser, dbsession, wsgi_app):
    method = create_payment_method(dbsession, wsgi_app.registry.keyring, browser.merchant)
    confirm = browser.get(f"/dashboard/payment-methods/{method.id}/delete")
    assert "Delete “Company card”?" in confirm.text
    dbsession.refresh(method)
    assert method.deleted_at is None  # looking at the question deletes nothing
    browser.post(f"/dashboard/payment-methods/{method.id}/delete", status=303)
    dbsession.refresh(method)
    assert method.deleted_at is not None
    browser.get(f"/dashboard/payment-methods/{method.id}", status=404)


def test_another_merchants_method_is_not_found(browser, dbsession, settings, wsgi_app):
    other = create_merchant(dbsession, settings)
    theirs = create_payment_method(dbsession, wsgi_app.registry.keyring, other)
    browser.get(f"/dashboard/payment-methods/{theirs.id}", status=404)
    browser.post(f"/dashboard/payment-methods/{theirs.id}", {"name": "mine"}, status=404)
    browser.post(f"/dashboard/payment-methods/{theirs.id}/default", status=404)
    browser.post(f"/dashboard/payment-methods/{theirs.id}/delete", status=404)
    assert str(theirs.id) not in browser.get("/dashboard/payment-methods").text
    dbsession.refresh(theirs)
    assert theirs.deleted_at is None and theirs.name == "Company card"
