"""What every gateway endpoint refuses before touching anything: oversized or non-JSON bodies,
gateways with no secret configured; and how the OpenAPI document presents the endpoints."""

from __future__ import annotations

import io

import pytest
from webob import Request

from payportal.db import TEST_CONNECTION_KEY
from tests.functional.gateways.conftest import WEBHOOKS, deliveries, post_event

MIB = 1024 * 1024
SECRET_VARIABLES = {
    "generic": "WEBHOOK_SECRET",
    "stripe": "STRIPE_WEBHOOK_SECRET",
    "paystack": "PAYSTACK_SECRET_KEY",
    "flutterwave": "FLUTTERWAVE_SECRET_HASH",
}


class CountingInput(io.RawIOBase):
    """A request body stream that notes how much of itself was read."""

    def __init__(self):
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        buffer[:] = b" " * len(buffer)
        self.bytes_read += len(buffer)
        return len(buffer)


def test_a_body_over_1_mib_is_refused_before_it_is_read(wsgi_app, connection, gateway):
    body = CountingInput()
    request = Request.blank(
        gateway.url,
        method="POST",
        environ={TEST_CONNECTION_KEY: connection, "HTTP_HOST": "localhost"},
    )
    request.environ["wsgi.input"] = body
    request.environ["CONTENT_LENGTH"] = str(8 * MIB)
    request.content_type = "application/json"

    response = request.get_response(wsgi_app)

    assert response.status_int == 413
    assert response.json["error"]["code"] == "payload_too_large"
    assert body.bytes_read == 0


def test_a_signed_body_of_1_mib_and_one_byte_is_413(testapp, dbsession, gateway):
    raw = b'{"pad": "' + b"x" * (MIB - 10) + b'"}'
    assert len(raw) == MIB + 1

    post_event(testapp, gateway, raw, status=413)

    assert deliveries(dbsession) == []


def test_a_body_that_is_not_json_by_media_type_is_415(testapp, gateway):
    raw = b'{"id": "evt_1"}'
    testapp.post(gateway.url, raw, headers=gateway.sign(raw), content_type="text/plain", status=415)


def test_a_gateway_without_a_secret_answers_503_and_stores_nothing(
    restricted_testapp, dbsession, gateway
):
    raw = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'

    response = post_event(restricted_testapp, gateway, raw, status=503)

    error = response.json["error"]
    assert error["code"] == "gateway_not_configured"
    assert SECRET_VARIABLES[gateway.name] in error["message"]
    assert deliveries(dbsession) == []


def test_only_post_is_allowed(testapp, gateway):
    response = testapp.get(gateway.url, status=405)
    assert response.json["error"]["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "POST"


def test_there_is_nothing_else_under_webhooks(testapp):
    testapp.post(f"{WEBHOOKS}/paypal", b"{}", content_type="application/json", status=404)


@pytest.mark.parametrize(
    ("endpoint", "header"),
    [
        ("payment", "X-Signature"),
        ("stripe", "Stripe-Signature"),
        ("paystack", "x-paystack-signature"),
        ("flutterwave", "verif-hash"),
    ],
)
def test_the_openapi_document_shows_the_signature_as_the_only_credential(testapp, endpoint, header):
    document = testapp.get("/api/v1/openapi.json").json

    operation = document["paths"][f"/webhooks/{endpoint}"]["post"]
    ((scheme, _scopes),) = operation["security"][0].items()
    assert len(operation["security"]) == 1
    signature = document["components"]["securitySchemes"][scheme]
    assert {k: signature[k] for k in ("type", "in", "name")} == {
        "type": "apiKey",
        "in": "header",
        "name": header,
    }
    assert "SECRET" in signature["description"]
    assert {"200", "400", "401", "413", "415", "503"} <= set(operation["responses"])
    receipt = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert receipt == {"$ref": "#/components/schemas/WebhookReceipt"}
    assert "Idempotency-Key" not in str(operation.get("parameters", []))


def test_the_openapi_document_shows_simulate_for_signed_in_merchants(testapp):
    document = testapp.get("/api/v1/openapi.json").json

    operation = document["paths"]["/webhooks/simulate"]["post"]
    assert operation["security"] == [{"jwt": []}, {"apiKey": []}]
    assert {"200", "401", "403", "404", "409", "422"} <= set(operation["responses"])
