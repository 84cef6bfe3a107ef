"""Webhook endpoints, their delivery log with resend, and the events log in the dashboard."""

from __future__ import annotations

import http.server
import threading

import pytest
import sqlalchemy as sa

from payportal.events.delivery import fan_out_events
from payportal.events.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from tests.factories import create_merchant, create_payment


@pytest.fixture
def receiver():
    """A real HTTP server on 127.0.0.1 recording what it receives; answers 200."""
    received: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"headers": dict(self.headers), "body": body})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks", received
    server.shutdown()
    server.server_close()


def add_endpoint(browser, url, events=("*",), **fields):
    return browser.post(
        "/dashboard/webhook-endpoints", {"url": url, "events": list(events), **fields}, status=201
    )


def endpoint_of(dbsession, merchant):
    return dbsession.execute(
        sa.select(WebhookEndpoint).where(WebhookEndpoint.merchant_id == merchant.id)
    ).scalar_one()


def test_empty_webhooks_page_explains_them(browser):
    page = browser.get("/dashboard/webhook-endpoints")
    assert "No webhook endpoints yet" in page.text
    assert page.html.find("a", href="http://localhost/api/docs") is not None


def test_create_an_endpoint_shows_the_secret_once(browser, dbsession):
    page = add_endpoint(browser, "https://hooks.example.com/pp", description="orders")
    secret = page.html.find("input", attrs={"data-secret": True})["value"]
    assert secret.startswith("whsec_")
    endpoint = endpoint_of(dbsession, browser.merchant)
    assert (endpoint.url, endpoint.events, endpoint.enabled) == (
        "https://hooks.example.com/pp",
        ["*"],
        True,
    )
    assert secret not in endpoint.sealed_secret
    listing = browser.get("/dashboard/webhook-endpoints")
    assert "https://hooks.example.com/pp" in listing.text
    assert secret not in listing.text
    assert secret not in browser.get(f"/dashboard/webhook-endpoints/{endpoint.id}").text


def test_choose_single_event_types(browser, dbsession):
    add_endpoint(browser, "https://hooks.example.com/a", ("payment.completed", "payment.failed"))
    endpoint = endpoint_of(dbsession, browser.merchant)
    assert endpoint.events == ["payment.completed", "payment.failed"]


def test_endpoint_errors_are_shown_by_their_fields(browser, dbsession):
    page = browser.post("/dashboard/webhook-endpoints", {"url": "ftp://example.com/x"}, status=422)
    assert page.html.find(id="e-events") is not None
    page = browser.post(
        "/dashboard/webhook-endpoints",
        {"url": "ftp://example.com/x", "events": ["*"]},
        status=422,
    )
    assert page.html.find(id="e-url") is not None
    assert page.html.find(id="f-url")["value"] == "ftp://example.com/x"
    assert dbsession.execute(sa.select(sa.func.count()).select_from(WebhookEndpoint)).scalar() == 0


def test_edit_disable_enable_and_delete(browser, dbsession):
    add_endpoint(browser, "https://hooks.example.com/old")
    endpoint = endpoint_of(dbsession, browser.merchant)
    path = f"/dashboard/webhook-endpoints/{endpoint.id}"
    browser.post(
        path, {"url": "https://hooks.example.com/new", "events": ["payment.refunded"]}, status=303
    )
    dbsession.refresh(endpoint)
    assert (endpoint.url, endpoint.events) == (
        "https://hooks.example.com/new",
        ["payment.refunded"],
    )

    browser.post(f"{path}/enabled", {"enabled": "false"}, status=303)
    dbsession.refresh(endpoint)
    assert endpoint.enabled is False
    assert "Enable" in browser.get(path).text
    browser.post(f"{path}/enabled", {"enabled": "true"}, status=303)
    dbsession.refresh(endpoint)
    assert endpoint.enabled is True

    assert "Delete " in browser.get(f"{path}/delete").text
    browser.post(f"{path}/delete", status=303)
    dbsession.refresh(endpoint)
    assert endpoint.deleted_at is not None
    browser.get(path, status=404)


def test_delivery_log_and_resend(browser, dbsession, settings, receiver):
    url, received = receiver
    add_endpoint(browser, url)
    endpoint = endpoint_of(dbsession, browser.merchant)
    payment = create_payment(dbsession, settings, browser.merchant, status="completed")
    fan_out_events(dbsession, 100)
    log = browser.get(f"/dashboard/webhook-endpoints/{endpoint.id}")
    assert "payment.initiated" in log.text and "payment.completed" in log.text
    assert 'badge--warning">Pending' in log.text

    delivery = dbsession.execute(
        sa.select(WebhookDelivery).where(WebhookDelivery.event_type == "payment.completed")
    ).scalar_one()
    browser.post(
        f"/dashboard/webhook-endpoints/{endpoint.id}/deliveries/{delivery.id}/retry", status=303
    )
    assert len(received) == 1
    assert received[0]["headers"]["Payportal-Signature"].startswith("t=")
    assert payment.reference.encode() in received[0]["body"]
    dbsession.refresh(delivery)
    assert (str(delivery.status), delivery.last_status_code) == ("succeeded", 200)
    log = browser.get(f"/dashboard/webhook-endpoints/{endpoint.id}")
    assert 'badge--success">Succeeded' in log.text
    timeline = browser.get(f"/dashboard/payments/{payment.reference}")
    assert f"Webhook to {url}" in timeline.text and "HTTP 200" in timeline.text


def test_events_log_filters_and_shows_the_body(browser, dbsession, settings):
    payment = create_payment(dbsession, settings, browser.merchant, status="failed")
    page = browser.get("/dashboard/events")
    assert "payment.initiated" in page.text and "payment.failed" in page.text
    page = browser.get("/dashboard/events?type=payment.failed")
    assert "payment.failed" in page.text
    assert "payment.initiated" not in page.html.find("tbody").text
    event_id = dbsession.execute(
        sa.select(OutboxEvent.id).where(OutboxEvent.type == "payment.failed")
    ).scalar_one()
    detail = browser.get(f"/dashboard/events/{event_id}")
    assert f'"reference": "{payment.reference}"' in detail.html.find("pre").text
    assert "View payment" in detail.text


def test_events_log_pages(browser, dbsession, settings):
    for _ in range(35):
        create_payment(dbsession, settings, browser.merchant)
    page = browser.get("/dashboard/events")
    assert len(page.html.select("tbody tr")) == 30
    second = browser.get(page.html.find("a", rel="next")["href"])
    assert len(second.html.select("tbody tr")) == 5


def test_another_merchants_endpoints_and_events_are_not_found(browser, dbsession, settings):
    other = create_merchant(dbsession, settings)
    other_browser_endpoint = WebhookEndpoint(
        merchant_id=other.id, url="https://other.example/h", events=["*"], sealed_secret="x"
    )
    dbsession.add(other_browser_endpoint)
    dbsession.flush()
    create_payment(dbsession, settings, other)
    fan_out_events(dbsession, 100)
    delivery = dbsession.execute(sa.select(WebhookDelivery)).scalar_one()
    event_id = delivery.event_id
    path = f"/dashboard/webhook-endpoints/{other_browser_endpoint.id}"
    browser.get(path, status=404)
    browser.post(path, {"url": "https://mine.example/h", "events": ["*"]}, status=404)
    browser.post(f"{path}/enabled", {"enabled": "false"}, status=404)
    browser.post(f"{path}/delete", status=404)
    browser.post(f"{path}/deliveries/{delivery.id}/retry", status=404)
    browser.get(f"/dashboard/events/{event_id}", status=404)
    assert "other.example" not in browser.get("/dashboard/webhook-endpoints").text
    assert browser.get("/dashboard/events").html.find("tbody") is None
    dbsession.refresh(other_browser_endpoint)
    assert other_browser_endpoint.enabled and other_browser_endpoint.deleted_at is None
