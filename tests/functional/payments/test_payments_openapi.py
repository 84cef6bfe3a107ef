"""The generated OpenAPI document describes the payments endpoints exactly as API.md does."""

from __future__ import annotations

EXPECTED = {
    ("post", "/payments/initialize"): "201",
    ("get", "/payments"): "200",
    ("get", "/payments/{reference}"): "200",
    ("put", "/payments/{reference}/status"): "200",
    ("post", "/payments/{reference}/refunds"): "201",
    ("get", "/payments/{reference}/events"): "200",
    ("get", "/payments/statistics/summary"): "200",
}


def test_every_payments_operation_is_documented(testapp):
    doc = testapp.get("/api/v1/openapi.json").json
    documented = {
        (method, path): op
        for path, ops in doc["paths"].items()
        if path.startswith("/payments")
        for method, op in ops.items()
    }
    assert set(documented) == set(EXPECTED)
    for key, success in EXPECTED.items():
        assert success in documented[key]["responses"], key
    listing = {p["name"] for p in documented[("get", "/payments")]["parameters"]}
    assert listing == {
        "status",
        "gateway",
        "currency",
        "customer_email",
        "created_from",
        "created_to",
        "q",
        "limit",
        "cursor",
    }
    summary = {p["name"] for p in documented[("get", "/payments/statistics/summary")]["parameters"]}
    assert summary == {"from", "to", "currency"}
    for key in [("put", "/payments/{reference}/status"), ("post", "/payments/{reference}/refunds")]:
        assert "409" in documented[key]["responses"]
    initialize = doc["components"]["schemas"]["InitializePayment"]
    assert initialize["additionalProperties"] is False
    assert set(initialize["required"]) == {"amount", "currency"}
