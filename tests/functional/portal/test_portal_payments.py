"""The dashboard's payment pages over real HTTP: table, filters, paging, CSV, detail, actions."""

from __future__ import annotations

import csv
import datetime as dt
import io

import sqlalchemy as sa

from payportal.events.models import OutboxEvent
from payportal.payments.models import Payment, PaymentTransition, Refund
from tests.factories import create_merchant, create_payment


def make(dbsession, settings, merchant, status="pending", **fields):
    return create_payment(dbsession, settings, merchant, status=status, **fields)


def test_empty_table_tells_the_merchant_what_to_do(browser):
    page = browser.get("/dashboard/payments")
    assert "No payments yet" in page.text
    assert "/dashboard/payments/new" in page.text


def test_table_shows_amount_status_customer_gateway(browser, dbsession, settings):
    payment = make(
        dbsession, settings, browser.merchant, "completed",
        amount=123456, currency="USD", customer_email="ada@example.com", gateway="stripe",
    )  # fmt: skip
    page = browser.get("/dashboard/payments")
    assert payment.reference in page.text
    assert "$1,234.56" in page.text
    assert 'badge--success">Completed' in page.text
    assert "ada@example.com" in page.text
    assert "Stripe" in page.text


def test_jpy_amounts_have_no_decimals(browser, dbsession, settings):
    make(dbsession, settings, browser.merchant, amount=500, currency="JPY")
    assert "¥500" in browser.get("/dashboard/payments").text


def test_filters_by_status_gateway_currency_and_search(browser, dbsession, settings):
    m = browser.merchant
    done = make(dbsession, settings, m, "completed", customer_email="zed@shop.example")
    failed = make(dbsession, settings, m, "failed", currency="EUR", gateway="paystack")
    pending = make(dbsession, settings, m, customer_email="amy@shop.example")

    page = browser.get("/dashboard/payments?status=completed")
    assert done.reference in page.text and failed.reference not in page.text
    page = browser.get("/dashboard/payments?currency=EUR")
    assert failed.reference in page.text and done.reference not in page.text
    page = browser.get("/dashboard/payments?gateway=paystack")
    assert failed.reference in page.text and pending.reference not in page.text
    page = browser.get("/dashboard/payments?q=amy@")
    assert pending.reference in page.text and done.reference not in page.text
    page = browser.get(f"/dashboard/payments?q={done.reference[:12]}")
    assert done.reference in page.text


def test_date_range_includes_the_to_day(browser, dbsession, settings):
    old = make(dbsession, settings, browser.merchant)
    new = make(dbsession, settings, browser.merchant)
    dbsession.execute(
        sa.update(Payment)
        .where(Payment.id == old.id)
        .values(created_at=dt.datetime(2024, 3, 10, 23, 59, tzinfo=dt.UTC))
    )
    page = browser.get("/dashboard/payments?created_from=2024-03-10&created_to=2024-03-10")
    assert old.reference in page.text
    assert new.reference not in page.text


def test_a_bad_date_is_shown_next_to_its_field(browser):
    page = browser.get("/dashboard/payments?created_from=yesterday")
    assert "Use a date like" in page.text


def test_filters_with_no_match_say_so(browser, dbsession, settings):
    make(dbsession, settings, browser.merchant)
    page = browser.get("/dashboard/payments?status=disputed")
    assert "No payments match these filters" in page.text


def test_cursor_paging_walks_every_payment_once(browser, dbsession, settings):
    made = {make(dbsession, settings, browser.merchant).reference for _ in range(30)}
    seen: list[str] = []
    page = browser.get("/dashboard/payments")
    while True:
        seen += [ref for ref in made if ref in page.text]
        next_link = page.html.find("a", rel="next")
        if next_link is None:
            break
        page = browser.get(next_link["href"])
    assert sorted(seen) == sorted(made)


def test_paging_keeps_the_filters(browser, dbsession, settings):
    for _ in range(27):
        make(dbsession, settings, browser.merchant, "failed")
    make(dbsession, settings, browser.merchant)
    page = browser.get("/dashboard/payments?status=failed")
    href = page.html.find("a", rel="next")["href"]
    assert "status=failed" in href and "cursor=" in href
    second = browser.get(href)
    assert second.html.find("a", rel="next") is None
    assert len(second.html.select("tbody tr")) == 2


def test_csv_export_has_exactly_the_filtered_rows(browser, dbsession, settings):
    m = browser.merchant
    wanted = {make(dbsession, settings, m, "completed", currency="EUR").reference for _ in range(3)}
    make(dbsession, settings, m, "completed", currency="USD")
    make(dbsession, settings, m, "failed", currency="EUR")
    other = create_merchant(dbsession, settings)
    make(dbsession, settings, other, "completed", currency="EUR")

    response = browser.get("/dashboard/payments/export.csv?status=completed&currency=EUR")
    assert response.content_type == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {row["reference"] for row in rows} == wanted
    assert {row["currency"] for row in rows} == {"EUR"}
    assert rows[0]["amount"] == "100.00"


def test_csv_export_streams_more_than_one_page(browser, dbsession, settings):
    made = {make(dbsession, settings, browser.merchant).reference for _ in range(60)}
    response = browser.get("/dashboard/payments/export.csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {row["reference"] for row in rows} == made


def test_csv_cells_cannot_become_spreadsheet_formulas(browser, dbsession, settings):
    make(dbsession, settings, browser.merchant, description="=HYPERLINK(1)")
    rows = list(csv.DictReader(io.StringIO(browser.get("/dashboard/payments/export.csv").text)))
    assert rows[0]["description"] == "'=HYPERLINK(1)"


def test_detail_shows_fields_and_timeline(browser, dbsession, settings):
    payment = make(
        dbsession, settings, browser.merchant, "partially_refunded",
        customer_email="ada@example.com", description="Order 42",
    )  # fmt: skip
    page = browser.get(f"/dashboard/payments/{payment.reference}")
    text = page.text
    assert "Order 42" in text and "ada@example.com" in text
    assert "Partially refunded" in text
    assert "$50.00" in text  # refunded half of $100.00
    assert "payment.partially_refunded" in text
    assert "Refund of" in text


def test_another_merchants_payment_is_not_found(browser, dbsession, settings):
    other = create_merchant(dbsession, settings)
    theirs = make(dbsession, settings, other, "completed")
    browser.get(f"/dashboard/payments/{theirs.reference}", status=404)
    browser.post(f"/dashboard/payments/{theirs.reference}/refund", {"kind": "full"}, status=404)
    browser.post(f"/dashboard/payments/{theirs.reference}/cancel", status=404)
    dbsession.refresh(theirs)
    assert theirs.amount_refunded == 0


def test_list_never_shows_another_merchants_payments(browser, dbsession, settings):
    other = create_merchant(dbsession, settings)
    theirs = make(dbsession, settings, other)
    assert theirs.reference not in browser.get("/dashboard/payments").text
    assert theirs.reference not in browser.get("/dashboard/payments/export.csv").text


def test_full_refund(browser, dbsession, settings):
    payment = make(dbsession, settings, browser.merchant, "completed")
    response = browser.post(
        f"/dashboard/payments/{payment.reference}/refund", {"kind": "full", "reason": "damaged"}
    )
    assert response.status_int == 303
    page = response.follow()
    assert "The refund is recorded." in page.text
    dbsession.refresh(payment)
    assert str(payment.status) == "refunded"
    refund = dbsession.execute(
        sa.select(Refund).where(Refund.payment_id == payment.id)
    ).scalar_one()
    assert (refund.amount, refund.reason, refund.source) == (10_000, "damaged", "dashboard")


def test_partial_refund_in_major_units(browser, dbsession, settings):
    payment = make(dbsession, settings, browser.merchant, "completed")
    browser.post(
        f"/dashboard/payments/{payment.reference}/refund",
        {"kind": "partial", "amount": "12.34"},
        status=303,
    )
    dbsession.refresh(payment)
    assert payment.amount_refunded == 1234
    assert str(payment.status) == "partially_refunded"


def test_refund_over_what_is_left_shows_the_error_by_the_field(browser, dbsession, settings):
    payment = make(dbsession, settings, browser.merchant, "completed")
    page = browser.post(
        f"/dashboard/payments/{payment.reference}/refund",
        {"kind": "partial", "amount": "100.01"},
        status=422,
    )
    field = page.html.find(id="e-amount")
    assert field is not None and "at most" in field.text
    assert page.html.find(id="f-amount")["value"] == "100.01"
    dbsession.refresh(payment)
    assert payment.amount_refunded == 0


def test_refund_with_too_many_decimals_is_refused(browser, dbsession, settings):
    payment = make(dbsession, settings, browser.merchant, "completed")
    page = browser.post(
        f"/dashboard/payments/{payment.reference}/refund",
        {"kind": "partial", "amount": "1.005"},
        status=422,
    )
    assert "2 decimal places" in page.html.find(id="e-amount").text


def test_refund_of_a_pending_payment_is_a_conflict(browser, dbsession, settings):
    payment = make(dbsession, settings, browser.merchant)
    page = browser.post(
        f"/dashboard/payments/{payment.reference}/refund", {"kind": "full"}, status=409
    )
    assert "cannot go from pending" in page.text
    assert dbsession.execute(sa.select(sa.func.count()).select_from(Refund)).scalar() == 0


def test_cancel_a_pending_payment(browser, dbsession, settings):
    payment = make(dbsession, settings, browser.merchant)
    assert "Cancel payment" in browser.get(f"/dashboard/payments/{payment.reference}").text
    browser.post(f"/dashboard/payments/{payment.reference}/cancel", status=303)
    dbsession.refresh(payment)
    assert str(payment.status) == "cancelled"
    source = dbsession.execute(
        sa.select(PaymentTransition.source).where(
            PaymentTransition.payment_id == payment.id,
            PaymentTransition.to_status == "cancelled",
        )
    ).scalar_one()
    assert source == "dashboard"


def test_a_completed_payment_offers_no_cancel(browser, dbsession, settings):
    payment = make(dbsession, settings, browser.merchant, "completed")
    assert "Cancel payment" not in browser.get(f"/dashboard/payments/{payment.reference}").text
    browser.post(f"/dashboard/payments/{payment.reference}/cancel", status=409)


def test_new_payment_form_converts_major_units_exactly(browser, dbsession):
    form = browser.get("/dashboard/payments/new")
    assert form.html.find("label", attrs={"for": "f-amount"}) is not None
    response = browser.post(
        "/dashboard/payments/new",
        {
            "amount": "19.99",
            "currency": "USD",
            "description": "Blue mug",
            "customer_email": "Ada@Example.com",
        },
        status=303,
    )
    payment = dbsession.execute(sa.select(Payment)).scalar_one()
    assert (payment.amount, payment.currency, payment.status) == (1999, "USD", "pending")
    assert payment.customer_email == "ada@example.com"
    page = response.follow()
    assert f"/checkout/{payment.reference}" in page.text
    event = dbsession.execute(sa.select(OutboxEvent.type)).scalar_one()
    assert event == "payment.initiated"


def test_new_payment_in_a_zero_decimal_currency(browser, dbsession):
    browser.post("/dashboard/payments/new", {"amount": "500", "currency": "JPY"}, status=303)
    assert dbsession.execute(sa.select(Payment.amount)).scalar_one() == 500


def test_new_payment_errors_stay_on_the_form(browser, dbsession):
    page = browser.post(
        "/dashboard/payments/new",
        {"amount": "0.5", "currency": "JPY", "customer_email": "not-an-email"},
        status=422,
    )
    assert "0 decimal places" in page.html.find(id="e-amount").text
    page = browser.post(
        "/dashboard/payments/new",
        {"amount": "5", "currency": "USD", "customer_email": "not-an-email"},
        status=422,
    )
    assert page.html.find(id="e-customer_email") is not None
    assert page.html.find(id="f-amount")["value"] == "5"
    assert dbsession.execute(sa.select(sa.func.count()).select_from(Payment)).scalar() == 0


def test_a_pending_merchant_sees_the_banner_and_cannot_move_money(sign_in, dbsession, settings):
    merchant = create_merchant(dbsession, settings, status="pending")
    browser = sign_in(merchant=merchant)
    page = browser.get("/dashboard/home")
    assert "awaiting approval" in page.text
    page = browser.post("/dashboard/payments/new", {"amount": "10", "currency": "USD"}, status=403)
    assert "active account" in page.text
    assert dbsession.execute(sa.select(sa.func.count()).select_from(Payment)).scalar() == 0


def test_a_suspended_merchant_cannot_refund(sign_in, dbsession, settings):
    merchant = create_merchant(dbsession, settings, status="active")
    payment = make(dbsession, settings, merchant, "completed")
    merchant.status = "suspended"
    dbsession.flush()
    browser = sign_in(merchant=merchant)
    assert "Your account is suspended" in browser.get("/dashboard/payments").text
    browser.post(f"/dashboard/payments/{payment.reference}/refund", {"kind": "full"}, status=403)
    dbsession.refresh(payment)
    assert payment.amount_refunded == 0


def test_simulate_completed_and_failed(browser, dbsession, settings):
    done = make(dbsession, settings, browser.merchant)
    page = browser.get(f"/dashboard/payments/{done.reference}")
    assert "Simulate completed" in page.text and "Simulate failed" in page.text
    browser.post(f"/dashboard/payments/{done.reference}/simulate", {"outcome": "completed"})
    dbsession.refresh(done)
    assert str(done.status) == "completed"
    timeline = browser.get(f"/dashboard/payments/{done.reference}").text
    assert "webhook:simulation" in timeline
    assert "Simulate completed" not in timeline

    declined = make(dbsession, settings, browser.merchant)
    browser.post(f"/dashboard/payments/{declined.reference}/simulate", {"outcome": "failed"})
    dbsession.refresh(declined)
    assert str(declined.status) == "failed"


def test_simulate_refuses_an_unknown_outcome_and_a_finished_payment(browser, dbsession, settings):
    payment = make(dbsession, settings, browser.merchant, "failed")
    browser.post(
        f"/dashboard/payments/{payment.reference}/simulate", {"outcome": "refunded"}, status=422
    )
    browser.post(
        f"/dashboard/payments/{payment.reference}/simulate", {"outcome": "completed"}, status=409
    )
    dbsession.refresh(payment)
    assert str(payment.status) == "failed"


def test_simulate_another_merchants_payment_is_not_found(browser, dbsession, settings):
    theirs = make(dbsession, settings, create_merchant(dbsession, settings))
    browser.post(
        f"/dashboard/payments/{theirs.reference}/simulate", {"outcome": "completed"}, status=404
    )
    dbsession.refresh(theirs)
    assert str(theirs.status) == "pending"
