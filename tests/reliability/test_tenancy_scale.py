"""Tenancy at scale: every dashboard page of merchant A's objects answers 404 to merchant B's
session (the API matrix is tests/functional/test_tenancy.py), and lists over 10,000 of A's
rows show B none of them, whatever the filter, page or format."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from payportal.payments.models import Payment
from payportal.resources import MerchantObject
from tests.factories import access_token, bearer, create_merchant, create_payment_row
from tests.functional.portal.conftest import sign_in_browser
from tests.functional.test_tenancy import OWNED_OBJECTS, World, entry_for
from tests.reliability.conftest import sized

SEEDED_REFERENCE = re.compile(r"pay_seed[0-9a-f]{32}")


def portal_object_views(app) -> list[tuple[type, str, tuple[str, ...]]]:
    """(context class, view name, request methods) of every dashboard view on one object."""
    found = set()
    for item in app.registry.introspector.get_category("views"):
        view = item["introspectable"]
        context = view["context"]
        if view["route_name"] != "portal" or not (
            isinstance(context, type) and issubclass(context, MerchantObject)
        ):
            continue
        methods = view["request_methods"] or ("GET",)
        methods = (methods,) if isinstance(methods, str) else tuple(sorted(methods))
        found.add((context, view["name"] or "", methods))
    return sorted(found, key=lambda v: (v[0].path_template, v[1], v[2]))


def test_every_dashboard_page_of_another_merchants_object_is_404(
    testapp, wsgi_app, dbsession, settings
):
    """Scenario 9, dashboard half: each object page and form action, GET and POST (with a
    valid CSRF token of B's own session) -> 404, never 403 or 200."""
    owner = create_merchant(dbsession, settings)
    intruder = create_merchant(dbsession, settings)
    world = World(dbsession, settings, wsgi_app.registry.keyring)
    browser = sign_in_browser(testapp, dbsession, settings, merchant=intruder)
    views = portal_object_views(wsgi_app)
    assert len(views) >= 5, views
    checked = []
    for context, name, methods in views:
        template = context.path_template
        prefix = entry_for(template)
        assert prefix, f"no creator in OWNED_OBJECTS for dashboard context {template}"
        owned = OWNED_OBJECTS[prefix](world, owner)
        path = template
        for param, value in owned.params.items():
            path = path.replace("{" + param + "}", value)
        url = "/dashboard" + path + (f"/{name}" if name else "")
        for method in {"GET", "POST", *methods}:
            if method == "POST":
                r = browser.post(url, {}, expect_errors=True)
            else:
                r = testapp.request(url, method=method, expect_errors=True)
            assert r.status_int == 404, f"{method} {url} ({context.__name__}): {r.status}"
            checked.append((method, url))
    assert len(checked) >= 10


def seed_payments(session, merchant_id, count: int, email: str) -> None:
    """`count` payments of one merchant in one statement (the factories would take minutes)."""
    session.execute(
        sa.text(
            """
            INSERT INTO payments (reference, merchant_id, amount, currency, status, gateway,
                                  customer_email, description, metadata, amount_refunded,
                                  version, expires_at, created_by)
            SELECT 'pay_seed' || md5(random()::text || n), :merchant_id, 1000 + n, 'USD',
                   (ARRAY['pending','completed','failed'])[1 + n % 3]::payment_status,
                   'internal', :email, 'seeded', '{}'::jsonb, 0, 1,
                   now() + interval '30 minutes', 'seed'
            FROM generate_series(1, :count) AS n
            """
        ),
        {"merchant_id": merchant_id, "count": count, "email": email},
    )


@pytest.fixture
def crowded(dbsession, settings, stress):
    """Merchant A with 10,000 payments (100,000 under --stress), B with a few of its own."""
    owner = create_merchant(dbsession, settings)
    intruder = create_merchant(dbsession, settings)
    seed_payments(dbsession, owner.id, sized(stress, 10_000, 100_000), "shared@example.com")
    mine = {create_payment_row(dbsession, settings, intruder).reference for _ in range(3)}
    dbsession.flush()
    return owner, intruder, mine


def test_lists_over_ten_thousand_foreign_rows_show_none_of_them(
    testapp, dbsession, settings, crowded
):
    """Scenario 9, list half: B pages through every list and filter the payments API and the
    dashboard offer; it sees its own 3 payments and 0 of A's."""
    owner, intruder, mine = crowded
    owner_refs = set(
        dbsession.scalars(sa.select(Payment.reference).where(Payment.merchant_id == owner.id))
    )
    assert len(owner_refs) >= 10_000
    headers = bearer(access_token(settings, intruder))
    queries = [
        "limit=100",
        "status=completed&limit=100",
        "customer_email=shared@example.com&limit=100",
        "q=pay_seed&limit=100",
        "currency=USD&limit=100",
        "created_from=2000-01-01T00:00:00Z&limit=100",
    ]
    seen = set()
    for query in queries:
        url = f"/api/v1/payments?{query}"
        while url:
            page = testapp.get(url, headers=headers).json
            seen |= {row["reference"] for row in page["data"]}
            cursor = page["next_cursor"]
            url = f"/api/v1/payments?{query}&cursor={cursor}" if cursor else None
    assert seen <= mine and not seen & owner_refs
    summary = testapp.get("/api/v1/payments/statistics/summary", headers=headers).json
    assert str(len(owner_refs)) not in str(summary)

    owners_view = sign_in_browser(testapp, dbsession, settings, merchant=owner)
    assert SEEDED_REFERENCE.search(owners_view.get("/dashboard/payments").text)
    testapp.reset()
    browser = sign_in_browser(testapp, dbsession, settings, merchant=intruder)
    for path in (
        "/dashboard/payments",
        "/dashboard/payments?q=pay_seed",
        "/dashboard/payments?status=completed",
        "/dashboard/payments/export.csv",
        "/dashboard/payments/export.csv?q=pay_seed",
    ):
        r = browser.get(path)
        assert not SEEDED_REFERENCE.search(r.text), path
