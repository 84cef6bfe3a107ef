"""The auth and API-key operations as the generated OpenAPI document describes them."""

from __future__ import annotations

import json

PUBLIC = {
    ("post", "/auth/register"),
    ("post", "/auth/login"),
    ("post", "/auth/refresh"),
    ("post", "/auth/logout"),
    ("post", "/auth/forgot-password"),
    ("post", "/auth/reset-password"),
}
TOKEN_ONLY = {
    ("patch", "/auth/profile"),
    ("post", "/auth/change-password"),
    ("post", "/api-keys"),
    ("get", "/api-keys"),
    ("delete", "/api-keys/{id}"),
}
TOKEN_OR_KEY = {("get", "/auth/profile")}


def test_every_auth_and_key_operation_is_documented_with_its_credentials(testapp):
    document = testapp.get("/api/v1/openapi.json").json
    paths = document["paths"]
    for method, path in PUBLIC | TOKEN_ONLY | TOKEN_OR_KEY:
        operation = paths[path][method]
        security = [next(iter(requirement)) for requirement in operation["security"]]
        if (method, path) in PUBLIC:
            assert security == [], (method, path)
        elif (method, path) in TOKEN_ONLY:
            assert security == ["jwt"], (method, path)
        else:
            assert sorted(security) == ["apiKey", "jwt"]
    assert "201" in paths["/auth/register"]["post"]["responses"]
    assert "409" in paths["/auth/register"]["post"]["responses"]
    assert "429" in paths["/auth/login"]["post"]["responses"]
    assert "202" in paths["/auth/forgot-password"]["post"]["responses"]
    assert "404" in paths["/api-keys/{id}"]["delete"]["responses"]


def test_secret_bearing_posts_take_no_idempotency_key(testapp):
    paths = testapp.get("/api/v1/openapi.json").json["paths"]
    for path in ("/api-keys", "/auth/change-password"):
        names = {p["name"] for p in paths[path]["post"].get("parameters", [])}
        assert "Idempotency-Key" not in names, path


def test_no_schema_exposes_a_password_hash_or_digest(testapp):
    schemas = testapp.get("/api/v1/openapi.json").json["components"]["schemas"]
    text = json.dumps({k: v for k, v in schemas.items() if k != "Error"})
    assert "password_hash" not in text
    assert '"digest"' not in text
