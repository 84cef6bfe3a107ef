"""The operator console: separate sign-in, merchants with status and volume, approve / suspend /
deactivate with a reason (audit logged), read-only payments; the two kinds of session never mix."""

from __future__ import annotations

import sqlalchemy as sa

from payportal.events.models import OutboxEvent
from payportal.merchants.models import AuditEntry, DashboardSession, Operator
from payportal.merchants.passwords import hash_password
from payportal.portal.sessions import OPERATOR, cookie_name
from tests.factories import DEFAULT_PASSWORD, create_merchant, create_payment


def create_operator(dbsession, settings, email="ops@payportal.example", **fields):
    operator = Operator(
        email=email,
        name=fields.pop("name", "Grace Ops"),
        password_hash=hash_password(
            DEFAULT_PASSWORD, pepper=settings.password_pepper, rounds=settings.bcrypt_rounds
        ),
        **fields,
    )
    dbsession.add(operator)
    dbsession.flush()
    return operator


def csrf_of(page) -> str:
    return page.html.find("input", attrs={"name": "csrf_token"})["value"]


def operator_browser(sign_in, dbsession, settings):
    return sign_in(operator=create_operator(dbsession, settings))


def test_console_asks_operators_to_sign_in(testapp):
    assert testapp.get("/admin/", status=303).location.startswith("http://localhost/admin/login")
    assert testapp.get("/admin/merchants", status=303).location.startswith(
        "http://localhost/admin/login"
    )


def test_operator_signs_in_with_the_form(testapp, dbsession, settings):
    operator = create_operator(dbsession, settings)
    page = testapp.get("/admin/login")
    response = testapp.post(
        "/admin/login",
        {"email": operator.email, "password": DEFAULT_PASSWORD, "csrf_token": csrf_of(page)},
        status=303,
    )
    assert response.location == "http://localhost/admin/merchants"
    assert testapp.cookies.get(cookie_name(settings, OPERATOR))
    assert "Grace Ops" in testapp.get("/admin/merchants").text


def test_operator_sign_in_failures_are_counted_and_throttled(testapp, dbsession, settings):
    operator = create_operator(dbsession, settings)
    for _ in range(5):
        page = testapp.get("/admin/login")
        testapp.post(
            "/admin/login",
            {"email": operator.email, "password": "wrong password", "csrf_token": csrf_of(page)},
            status=401,
        )
    page = testapp.get("/admin/login")
    blocked = testapp.post(
        "/admin/login",
        {"email": operator.email, "password": DEFAULT_PASSWORD, "csrf_token": csrf_of(page)},
        status=429,
    )
    assert "Retry-After" in blocked.headers


def test_a_deactivated_operator_cannot_sign_in_or_stay_in(sign_in, dbsession, settings):
    operator = create_operator(dbsession, settings)
    browser = sign_in(operator=operator)
    browser.get("/admin/merchants")
    operator.is_active = False
    dbsession.flush()
    browser.get("/admin/merchants", status=303)


def test_a_merchant_session_never_reaches_the_console(browser):
    response = browser.get("/admin/merchants", status=303)
    assert response.location.startswith("http://localhost/admin/login")
    browser.get("/admin/login", status=200)  # offered the operator sign-in, nothing more


def test_an_operator_session_is_not_a_merchants(sign_in, dbsession, settings):
    browser = operator_browser(sign_in, dbsession, settings)
    assert browser.get("/dashboard/home", status=303).location.startswith(
        "http://localhost/dashboard/login"
    )
    browser.get("/api/v1/payments", status=401)


def test_merchants_list_shows_status_and_volume(sign_in, dbsession, settings):
    shop = create_merchant(dbsession, settings, business_name="Blue Mugs Ltd")
    create_payment(dbsession, settings, shop, status="completed", amount=12_345, currency="EUR")
    create_payment(dbsession, settings, shop, status="failed", amount=99_999, currency="EUR")
    waiting = create_merchant(dbsession, settings, status="pending", name="Newcomer")
    browser = operator_browser(sign_in, dbsession, settings)
    page = browser.get("/admin/merchants")
    row = next(tr for tr in page.html.select("tbody tr") if "Blue Mugs Ltd" in tr.text)
    assert "€123.45" in row.text and "Active" in row.text
    assert "€999.99" not in row.text  # failed payments are not volume
    pending = browser.get("/admin/merchants?status=pending")
    assert "Newcomer" in pending.text and "Blue Mugs Ltd" not in pending.text
    assert waiting.email in pending.text


def test_merchants_search(sign_in, dbsession, settings):
    create_merchant(dbsession, settings, email="alpha@shop.example")
    create_merchant(dbsession, settings, email="beta@shop.example")
    browser = operator_browser(sign_in, dbsession, settings)
    page = browser.get("/admin/merchants?q=alpha")
    assert "alpha@shop.example" in page.text and "beta@shop.example" not in page.text


def test_approve_a_pending_merchant(sign_in, dbsession, settings):
    merchant = create_merchant(dbsession, settings, status="pending")
    browser = operator_browser(sign_in, dbsession, settings)
    page = browser.get(f"/admin/merchants/{merchant.id}")
    assert "Approve" in page.text
    browser.post(f"/admin/merchants/{merchant.id}/status", {"status": "active"}, status=303)
    dbsession.refresh(merchant)
    assert merchant.status == "active"
    entry = dbsession.execute(
        sa.select(AuditEntry).where(AuditEntry.action == "merchant.status_changed")
    ).scalar_one()
    assert (entry.from_value, entry.to_value) == ("pending", "active")
    assert entry.actor == f"operator:{browser.operator.id}"
    event = dbsession.execute(
        sa.select(OutboxEvent).where(OutboxEvent.type == "merchant.status_changed")
    ).scalar_one()
    assert event.merchant_id == merchant.id


def test_suspend_needs_a_reason_and_records_it(sign_in, dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    browser = operator_browser(sign_in, dbsession, settings)
    page = browser.post(
        f"/admin/merchants/{merchant.id}/status", {"status": "suspended"}, status=422
    )
    assert page.html.find(id="e-reason") is not None
    dbsession.refresh(merchant)
    assert merchant.status == "active"
    browser.post(
        f"/admin/merchants/{merchant.id}/status",
        {"status": "suspended", "reason": "chargeback spike"},
        status=303,
    )
    dbsession.refresh(merchant)
    assert merchant.status == "suspended"
    page = browser.get(f"/admin/merchants/{merchant.id}")
    assert "chargeback spike" in page.text and "Reactivate" in page.text


def test_deactivate_and_an_impossible_change(sign_in, dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    browser = operator_browser(sign_in, dbsession, settings)
    browser.post(
        f"/admin/merchants/{merchant.id}/status",
        {"status": "inactive", "reason": "closed the business"},
        status=303,
    )
    dbsession.refresh(merchant)
    assert merchant.status == "inactive"
    browser.post(
        f"/admin/merchants/{merchant.id}/status", {"status": "suspended", "reason": "x"}, status=422
    )
    browser.post(f"/admin/merchants/{merchant.id}/status", {"status": "bogus"}, status=422)
    dbsession.refresh(merchant)
    assert merchant.status == "inactive"


def test_status_change_needs_the_csrf_token(sign_in, dbsession, settings):
    merchant = create_merchant(dbsession, settings, status="pending")
    browser = operator_browser(sign_in, dbsession, settings)
    browser.post(
        f"/admin/merchants/{merchant.id}/status", {"status": "active"}, csrf=False, status=403
    )
    dbsession.refresh(merchant)
    assert merchant.status == "pending"


def test_a_merchant_cannot_approve_itself(browser, dbsession, settings):
    pending = create_merchant(dbsession, settings, status="pending")
    browser.post(f"/admin/merchants/{pending.id}/status", {"status": "active"}, status=403)
    dbsession.refresh(pending)
    assert pending.status == "pending"


def test_read_only_payments_of_any_merchant(sign_in, dbsession, settings):
    merchant = create_merchant(dbsession, settings)
    payment = create_payment(dbsession, settings, merchant, status="partially_refunded")
    browser = operator_browser(sign_in, dbsession, settings)
    table = browser.get(f"/admin/merchants/{merchant.id}/payments")
    assert payment.reference in table.text
    detail = browser.get(f"/admin/merchants/{merchant.id}/payments/{payment.reference}")
    assert "Partially refunded" in detail.text and "Refund of" in detail.text
    assert detail.html.find("form", attrs={"action": lambda a: a and "refund" in a}) is None
    # the console has no way to change a payment
    browser.post(
        f"/admin/merchants/{merchant.id}/payments/{payment.reference}/refund",
        {"kind": "full"},
        status=404,
    )


def test_a_payment_under_the_wrong_merchant_is_not_found(sign_in, dbsession, settings):
    one, two = create_merchant(dbsession, settings), create_merchant(dbsession, settings)
    payment = create_payment(dbsession, settings, one)
    browser = operator_browser(sign_in, dbsession, settings)
    browser.get(f"/admin/merchants/{two.id}/payments/{payment.reference}", status=404)


def test_operator_sign_out(sign_in, dbsession, settings):
    browser = operator_browser(sign_in, dbsession, settings)
    browser.post("/admin/logout", status=303)
    assert dbsession.execute(sa.select(DashboardSession.revoked_at)).scalar_one() is not None
    browser.get("/admin/merchants", status=303)
