"""Example values for the OpenAPI document, derived from the JSON Schemas themselves: a field's own
`examples` first, then a value known for its name, then one that fits its type and format.

Every example the document shows is checked against its schema by the contract tests, so an
example can never teach an integrator a request the API would refuse.
"""

from __future__ import annotations

from typing import Any

# what a field of this name looks like in a realistic integration (used when the schema has no
# examples of its own); money in minor units, as everywhere in the API
VALUES_BY_NAME: dict[str, Any] = {
    "id": "5f0c7d2e-8a61-4b6f-9a53-2d3f4c5b6a71",
    "merchant_id": "0b6f8e1c-3d2a-4f59-8c7e-1a2b3c4d5e6f",
    "payment_method_id": None,
    "endpoint_id": "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
    "event_id": "9e8d7c6b-5a49-4382-a716-f5e4d3c2b1a0",
    "reference": "pay_3kTq9v0bWw2mXy7LrN1aZpQe",
    "amount": 1050,
    "amount_refunded": 0,
    "fee": 60,
    "net_amount": 990,
    "settled_amount": 1050,
    "count": 1,
    "settled_count": 1,
    "attempt_count": 1,
    "currency": "USD",
    "email": "ada@example.com",
    "customer_email": "customer@example.com",
    "customer_name": "Grace Hopper",
    "customer_phone": "+44 20 7946 0958",
    "phone": "+44 20 7946 0958",
    "name": "Ada's Books",
    "business_name": "Ada's Books Ltd",
    "business_id": "GB-0123456",
    "address": "1 Analytical Row, London",
    "website": "https://adasbooks.example.com",
    "country": "GB",
    "description": "Order 1234",
    "reason": "Customer returned the item",
    "failure_code": None,
    "failure_reason": None,
    "gateway_reference": None,
    "url": "https://example.com/payportal/webhooks",
    "checkout_url": "https://payportal.example.com/checkout/pay_3kTq9v0bWw2mXy7LrN1aZpQe",
    "prefix": "sk_Xq3vR9aB",
    "key": "sk_Xq3vR9aBcD4eF5gH6iJ7kL8mN9oP0qR1sT2uV3wX4yZ5",
    "secret": "whsec_0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0eXAiOiJhY2Nlc3MifQ.c2lnbmF0dXJl",
    "refresh_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0eXAiOiJyZWZyZXNoIn0.c2lnbmF0dXJl",
    "expires_in": 3600,
    "password": "a long and private passphrase",
    "current_password": "a long and private passphrase",
    "new_password": "another long passphrase",
    "token": "Yx2rQ9vL0aB7cD4eF1gH6iJ3kL8mN5oP",
    "correlation_id": "1b4e28ba2fa1461d9c3f5e7a9b0c2d4e",
    "next_cursor": None,
    "has_more": False,
    "last4": "4242",
    "brand": "visa",
    "exp_month": 12,
    "exp_year": 2030,
    "bank_name": "Barclays",
    "provider": "mpesa",
    "external_provider": None,
    "external_id": None,
    "status_code": 200,
    "latency_ms": 84,
    "last_status_code": 200,
    "metadata": {"order_id": "1234"},
    "type": "payment.completed",
    "event_type": "payment.completed",
    "gateway_event_id": "evt_1NqZ2a",
    "status": "completed",
    "gateway": "stripe",
    "from_status": "pending",
    "to_status": "completed",
    "source": "api",
    "actor": "merchant:0b6f8e1c-3d2a-4f59-8c7e-1a2b3c4d5e6f",
    "outcome": "processed",
    "error": None,
    "last_error": None,
}
TIMESTAMP = "2025-05-01T12:00:00Z"
FORMATS = {
    "uuid": "5f0c7d2e-8a61-4b6f-9a53-2d3f4c5b6a71",
    "date-time": TIMESTAMP,
    "email": "ada@example.com",
    "uri": "https://example.com/",
}
# timestamps the API serializes as ISO 8601 strings without naming them *_at
TIMESTAMP_NAMES = frozenset({"at", "created_from", "created_to"})
_NO_VALUE = object()


# one realistic envelope per status, as errors.py renders it
ERROR_EXAMPLES = {
    400: ("invalid_request", "invalid_request", "request body is not valid JSON", []),
    401: (
        "authentication_error",
        "authentication_required",
        "valid credentials are required",
        [],
    ),
    403: (
        "permission_error",
        "merchant_inactive",
        "merchant account is pending: money-moving requests need an active account",
        [],
    ),
    404: ("not_found", "not_found", "no such resource", []),
    405: ("invalid_request", "method_not_allowed", "PATCH is not allowed on this path", []),
    409: (
        "conflict",
        "invalid_transition",
        "a completed payment cannot become pending",
        [],
    ),
    413: ("invalid_request", "payload_too_large", "request body is over 65536 bytes", []),
    415: ("invalid_request", "unsupported_media_type", "send the body as application/json", []),
    422: (
        "validation_error",
        "invalid_field",
        "amount: Input should be greater than 0",
        [{"field": "amount", "message": "Input should be greater than 0"}],
    ),
    429: ("rate_limited", "rate_limited", "too many requests: retry after 1 s", []),
    500: (
        "server_error",
        "internal_error",
        "internal error; quote the correlation_id when reporting it",
        [],
    ),
    503: (
        "server_error",
        "gateway_not_configured",
        "stripe webhooks are not configured on this server: set STRIPE_WEBHOOK_SECRET",
        [],
    ),
}


def _resolve(schema: dict, schemas: dict) -> dict:
    while "$ref" in schema:
        schema = {**schemas[schema["$ref"].rsplit("/", 1)[1]], **_siblings(schema)}
    return schema


def _siblings(schema: dict) -> dict:
    return {k: v for k, v in schema.items() if k != "$ref"}


def _named(name: str | None, schema: dict) -> Any:
    if name is not None and (name.endswith("_at") or name in TIMESTAMP_NAMES):
        return TIMESTAMP
    if name not in VALUES_BY_NAME:
        return _NO_VALUE
    value = VALUES_BY_NAME[name]
    branches = schema.get("anyOf", [schema])
    nullable = any(b.get("type") == "null" for b in branches)
    if value is None and not nullable:
        return _NO_VALUE
    return value


def request_example_for(schema: dict, schemas: dict) -> Any:
    """A request body: its required fields, or every field when none is required."""
    example = example_for(schema, schemas, full=False)
    if example == {}:
        full = example_for(schema, schemas)
        example = {key: value for key, value in full.items() if value is not None}
    return example


def example_for(schema: dict, schemas: dict, name: str | None = None, *, full: bool = True) -> Any:
    """An example instance of `schema`; `full=False` leaves optional object fields out."""
    schema = _resolve(schema, schemas)
    if schema.get("examples"):
        return schema["examples"][0]
    if "const" in schema:
        return schema["const"]
    named = _named(name, schema)
    if named is None:
        return None
    combined = "oneOf" in schema or "anyOf" in schema
    if named is not _NO_VALUE and not combined and named in schema.get("enum", [named]):
        return named
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            branches = [_resolve(b, schemas) for b in schema[combinator]]
            concrete = [b for b in branches if b.get("type") != "null"]
            if not concrete:
                return None
            return example_for(concrete[0], schemas, name, full=full)
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        required = set(schema.get("required", []))
        return {
            key: example_for(prop, schemas, key, full=full)
            for key, prop in schema.get("properties", {}).items()
            if full or key in required
        }
    if kind == "array":
        return [example_for(schema.get("items", {}), schemas, name, full=full)]
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if kind == "string":
        if schema.get("format") in FORMATS:
            return FORMATS[schema["format"]]
        return "x" * max(1, schema.get("minLength", 1)) if name is None else name.replace("_", " ")
    return None
