"""The payments API over HTTP: initialize, read, change status, refund, timeline."""

from __future__ import annotations

from tests.factories import merchant_headers


def test_smoke(testapp, dbsession, settings):
    _m, headers = merchant_headers(dbsession, settings)
    r = testapp.post_json(
        "/api/v1/payments/initialize",
        {"amount": 1050, "currency": "USD"},
        headers=headers,
        status=201,
    )
    ref = r.json["payment"]["reference"]
    print(r.json)
    r = testapp.put_json(f"/api/v1/payments/{ref}/status", {"status": "completed"}, headers=headers)
    print(r.json)
    r = testapp.post_json(
        f"/api/v1/payments/{ref}/refunds", {"amount": 50}, headers=headers, status=201
    )
    print(r.json)
    print(testapp.get(f"/api/v1/payments/{ref}/events", headers=headers).json)
    print(testapp.get("/api/v1/payments", headers=headers).json)
    print(testapp.get("/api/v1/payments/statistics/summary", headers=headers).json)
    print(testapp.get("/api/v1/payments?q=pay_", headers=headers).json["data"][0]["reference"])
