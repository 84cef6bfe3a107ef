"""The dashboard in a real browser: sign up, approval, API key, a payment paid on the hosted
checkout, a half refund, filters, search and the CSV download; screenshots of the main pages."""

from __future__ import annotations

import csv
import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

from payportal.merchants.services import create_operator
from tests.factories import DEFAULT_PASSWORD, create_merchant, create_payment

pytestmark = pytest.mark.browser

OPERATOR_EMAIL = "ops@payportal.example"


def sign_in(page, email, password=DEFAULT_PASSWORD):
    page.goto("/dashboard/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def api_get(base_url, path, key):
    """A JSON API call with the API key, as an integration would make it."""
    headers = {"Authorization": f"Bearer {key}"}
    request = urllib.request.Request(base_url + path, headers=headers)  # noqa: S310 - http only
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.status, json.loads(response.read())


def nav(page, name):
    """A link of the dashboard's left navigation."""
    return page.get_by_role("navigation", name="Dashboard").get_by_role("link", name=name)


def test_sign_up_approve_key_pay_refund(new_page, live_server, db, settings, screenshot):
    create_operator(db, settings, email=OPERATOR_EMAIL, password=DEFAULT_PASSWORD, name="Grace")
    db.commit()

    # a merchant signs up and waits for approval
    merchant = new_page()
    merchant.goto("/dashboard/signup")
    merchant.get_by_label("Your name").fill("Ada Lovelace")
    merchant.get_by_label("Work email").fill("ada@engines.example")
    merchant.get_by_label("Password").fill("a long enough password")
    merchant.get_by_label("Business name").fill("Analytical Engines")
    merchant.get_by_label("Country").fill("GB")
    screenshot(merchant, "01-sign-up")
    merchant.get_by_role("button", name="Create account").click()
    expect(merchant.get_by_text("Your account is awaiting approval.")).to_be_visible()
    screenshot(merchant, "02-overview-awaiting-approval")

    # an operator approves it from the console
    operator = new_page()
    operator.goto("/admin/login")
    operator.get_by_label("Email").fill(OPERATOR_EMAIL)
    operator.get_by_label("Password").fill(DEFAULT_PASSWORD)
    operator.get_by_role("button", name="Sign in").click()
    operator.get_by_role("link", name="Awaiting approval").click()
    screenshot(operator, "03-console-awaiting-approval")
    operator.get_by_role("link", name="Analytical Engines").click()
    operator.get_by_role("button", name="Approve").click()
    expect(operator.get_by_text("The merchant's status is changed.")).to_be_visible()
    screenshot(operator, "04-console-merchant")

    # the merchant may now move money: create an API key (shown once, copied)
    merchant.reload()
    expect(merchant.get_by_text("awaiting approval")).to_have_count(0)
    nav(merchant, "Developers").click()
    merchant.get_by_label("Key name").fill("Checkout server")
    merchant.get_by_role("button", name="Create key").click()
    secret = merchant.locator("input[data-secret]")
    key = secret.input_value()
    assert key.startswith("sk_")
    merchant.get_by_role("button", name="Copy").click()
    expect(merchant.get_by_text("Copied to the clipboard.")).to_be_visible()
    assert merchant.evaluate("navigator.clipboard.readText()") == key
    screenshot(merchant, "05-api-key-created")
    assert api_get(live_server, "/api/v1/payments", key)[0] == 200

    # initialize a payment from the form: 25.50 USD becomes 2550 minor units
    nav(merchant, "Payments").click()
    merchant.get_by_role("link", name="New payment").click()
    merchant.get_by_label("Amount").fill("25.50")
    merchant.get_by_label("Currency").select_option("USD")
    merchant.get_by_label("Description").fill("Difference engine, model 2")
    merchant.get_by_label("Customer email").fill("charles@babbage.example")
    merchant.get_by_role("button", name="Create payment").click()
    checkout_url = merchant.get_by_label("Checkout link").input_value()
    assert checkout_url.startswith(f"{live_server}/checkout/pay_")
    reference = checkout_url.rsplit("/", 1)[1]
    screenshot(merchant, "06-payment-pending")
    _status, body = api_get(live_server, f"/api/v1/payments/{reference}", key)
    assert (body["payment"]["amount"], body["payment"]["status"]) == (2550, "pending")

    # the customer pays on the hosted checkout page
    customer = new_page(width=420, height=860)
    customer.goto(checkout_url)
    expect(customer.get_by_text("$25.50").first).to_be_visible()
    screenshot(customer, "07-checkout")
    customer.get_by_role("button", name=re.compile(r"^Pay")).click()
    expect(customer.get_by_text(re.compile("paid|completed", re.I)).first).to_be_visible()

    # the merchant sees it completed in the list and in the timeline
    nav(merchant, "Payments").click()
    row = merchant.get_by_role("row").filter(has_text=reference)
    expect(row.get_by_text("Completed")).to_be_visible()
    screenshot(merchant, "08-payments-list")
    row.get_by_role("link", name=reference).click()
    timeline = merchant.locator(".timeline")
    expect(timeline.get_by_text("Completed").first).to_be_visible()
    expect(timeline.get_by_text("payment.completed")).to_be_visible()

    # refund half
    merchant.get_by_label("Partial refund").check()
    merchant.get_by_label("Amount to refund (USD)").fill("12.75")
    merchant.get_by_label("Reason").fill("One of two parts arrived damaged")
    merchant.get_by_role("button", name="Refund payment").click()
    expect(merchant.get_by_text("The refund is recorded.")).to_be_visible()
    expect(merchant.locator(".page-header .badge").first).to_have_text("Partially refunded")
    expect(timeline.get_by_text("Refund of")).to_be_visible()
    screenshot(merchant, "09-payment-partially-refunded")
    _status, body = api_get(live_server, f"/api/v1/payments/{reference}", key)
    assert (body["payment"]["status"], body["payment"]["amount_refunded"]) == (
        "partially_refunded",
        1275,
    )

    nav(merchant, "Overview").click()
    screenshot(merchant, "10-overview")


def test_filters_search_and_csv_download(new_page, db, settings, screenshot, tmp_path):
    shop = create_merchant(db, settings, email="shop@mugs.example", business_name="Blue Mugs")
    made = {}
    for n in range(6):
        status = ("completed", "failed", "pending")[n % 3]
        payment = create_payment(
            db, settings, shop, status=status, amount=1000 + n,
            currency="EUR" if n < 3 else "USD", customer_email=f"buyer{n}@mugs.example",
        )  # fmt: skip
        made[payment.reference] = payment
    db.commit()

    page = new_page()
    sign_in(page, shop.email)
    screenshot(page, "11-overview-with-data")
    nav(page, "Payments").click()
    expect(page.locator("tbody tr")).to_have_count(6)

    page.get_by_label("Status").select_option("completed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.locator("tbody").get_by_text("Failed")).to_have_count(0)

    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Search").fill("buyer4@")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody")).to_contain_text("buyer4@mugs.example")

    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Currency").select_option("EUR")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(3)
    screenshot(page, "12-payments-filtered")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith("payments-")
    target = tmp_path / "payments.csv"
    download.save_as(target)
    with target.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    expected = {ref for ref, p in made.items() if p.currency == "EUR"}
    assert {row["reference"] for row in rows} == expected
    assert {row["currency"] for row in rows} == {"EUR"}


def test_every_page_looks_right_on_a_laptop_and_a_phone(new_page, db, settings, screenshot):
    shop = create_merchant(db, settings, email="tour@mugs.example")
    payment = create_payment(db, settings, shop, status="completed", amount=4200)
    db.commit()
    page = new_page()
    sign_in(page, shop.email)
    tour = [
        ("payment-methods/new?type=card", "13-add-card"),
        ("webhook-endpoints", "14-webhooks"),
        ("events", "15-events"),
        ("settings", "16-settings"),
        (f"payments/{payment.reference}", "17-payment-completed"),
    ]
    for path, name in tour:
        page.goto(f"/dashboard/{path}")
        expect(page.locator("main h1, main h2").first).to_be_visible()
        screenshot(page, name)

    phone = new_page(width=390, height=844)
    sign_in(phone, shop.email)
    screenshot(phone, "18-phone-overview")
    nav(phone, "Payments").click()
    # keyboard: Tab from the top reaches the skip link first, then the navigation
    phone.keyboard.press("Tab")
    expect(phone.get_by_role("link", name="Skip to content")).to_be_focused()
    screenshot(phone, "19-phone-payments")
