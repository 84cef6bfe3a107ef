"""The overview page: volume per currency, count, success rate, charts, latest payments."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from payportal.payments.models import Payment
from tests.factories import create_merchant, create_payment


def test_overview_of_a_new_account_explains_the_first_step(browser):
    page = browser.get("/dashboard/home")
    assert "Your first payment is one form away" in page.text
    assert "No payments in this period." in page.text


def test_overview_totals_per_currency_and_success_rate(browser, dbsession, settings):
    m = browser.merchant
    for _ in range(3):
        create_payment(dbsession, settings, m, status="completed", amount=1000, currency="USD")
    create_payment(dbsession, settings, m, status="failed", amount=5000, currency="USD")
    create_payment(dbsession, settings, m, status="completed", amount=700, currency="JPY")
    create_payment(dbsession, settings, m, status="pending", amount=900, currency="USD")
    create_merchant(dbsession, settings)  # another merchant's data never counts
    page = browser.get("/dashboard/home?range=30d")
    stats = page.html.select(".stat")
    assert "$30.00" in stats[0].text and "¥700" in stats[0].text
    assert "6" in stats[1].text and "4 succeeded" in stats[1].text
    # 4 succeeded of 5 with an outcome (the pending one has none yet)
    assert "80.0" in stats[2].text


def test_overview_charts_are_server_rendered_svg(browser, dbsession, settings):
    create_payment(dbsession, settings, browser.merchant, status="completed", amount=2500)
    create_payment(dbsession, settings, browser.merchant, status="failed")
    page = browser.get("/dashboard/home?range=7d")
    chart = page.html.find("svg", class_="chart")
    assert chart is not None and "Settled volume in USD" in chart["aria-label"]
    bars = chart.find_all("rect", class_="bar")
    assert len(bars) == 7
    assert any("$25.00" in bar.title.text for bar in bars)
    statuses = page.html.select(".status-bars li")
    assert [li.find(class_="badge").text for li in statuses] == ["Completed", "Failed"]


def test_today_is_charted_by_the_hour(browser, dbsession, settings):
    create_payment(dbsession, settings, browser.merchant, status="completed")
    page = browser.get("/dashboard/home?range=today")
    assert len(page.html.find("svg", class_="chart").find_all("rect", class_="bar")) == 24


def test_ranges_count_only_their_days(browser, dbsession, settings):
    old = create_payment(dbsession, settings, browser.merchant, status="completed", amount=4200)
    create_payment(dbsession, settings, browser.merchant, status="completed", amount=100)
    ten_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    dbsession.execute(
        sa.update(Payment).where(Payment.id == old.id).values(created_at=ten_days_ago)
    )
    assert "$43.00" in browser.get("/dashboard/home?range=30d").html.select(".stat")[0].text
    assert "$1.00" in browser.get("/dashboard/home?range=7d").html.select(".stat")[0].text


def test_chart_currency_can_be_switched(browser, dbsession, settings):
    create_payment(dbsession, settings, browser.merchant, status="completed", currency="USD")
    create_payment(dbsession, settings, browser.merchant, status="completed", currency="EUR")
    page = browser.get("/dashboard/home?currency=EUR")
    assert "Settled volume in EUR" in page.html.find("svg", class_="chart")["aria-label"]


def test_latest_payments_link_to_their_pages(browser, dbsession, settings):
    payment = create_payment(dbsession, settings, browser.merchant)
    page = browser.get("/dashboard/home")
    assert page.html.find("a", href=f"http://localhost/dashboard/payments/{payment.reference}")


def test_latest_payments_are_the_eight_newest_of_this_merchant_newest_first(
    browser, dbsession, settings
):
    now = dt.datetime.now(dt.UTC)
    mine = []
    for minutes in range(10):
        payment = create_payment(dbsession, settings, browser.merchant)
        payment.created_at = now - dt.timedelta(minutes=minutes)
        mine.append(payment.reference)
    other = create_payment(dbsession, settings, create_merchant(dbsession, settings))
    other.created_at = now + dt.timedelta(minutes=1)  # newer, but another merchant's
    dbsession.flush()
    page = browser.get("/dashboard/home")
    prefix = "http://localhost/dashboard/payments/"
    links = [a["href"] for a in page.html.find_all("a", href=True)]
    shown = [h.removeprefix(prefix) for h in links if h.startswith(prefix + "pay_")]
    assert list(dict.fromkeys(shown)) == mine[:8]  # in page order, each once
