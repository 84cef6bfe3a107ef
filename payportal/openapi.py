"""The OpenAPI 3.1 document, generated from the API view registrations, and Swagger UI."""

from __future__ import annotations

import json
import os

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from payportal.apiview import ApiOperation, path_parameters
from payportal.idempotency import HEADER as IDEMPOTENCY_HEADER
from payportal.idempotency import REPLAY_HEADER
from payportal.logging import CORRELATION_HEADER
from payportal.openapi_examples import ERROR_EXAMPLES, example_for, request_example_for
from payportal.resources import ApiRoot

API_VERSION = "1.0.0"
SERVER_PREFIX = "/api/v1"
CORRELATION_EXAMPLE = "1b4e28ba2fa1461d9c3f5e7a9b0c2d4e"
API_DESCRIPTION = """Multi-tenant payments over JSON.

* **Authentication**: `Authorization: Bearer <access token>` (from auth/login, auth/register or
  auth/refresh; 1 h) or `Authorization: Bearer sk_...` (an API key; it may not manage keys, the
  profile or the password). Gateway webhooks authenticate by their signature instead.
* **Money**: amounts are integers in the currency's minor unit (`1050` USD is $10.50, `500` JPY
  is ¥500).
* **Errors**: one envelope, `{"error": {type, code, message, details, correlation_id}}`.
* **Idempotency**: every POST takes an `Idempotency-Key`; a retry replays the first response.
* **Lists**: newest first, `{data, has_more, next_cursor}`; pass `cursor=next_cursor`.
* **Tenancy**: another merchant's object is a 404, never a 403.
"""

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "code", "message", "details", "correlation_id"],
            "properties": {
                "type": {
                    "type": "string",
                    "enum": [
                        "invalid_request",
                        "authentication_error",
                        "permission_error",
                        "not_found",
                        "conflict",
                        "validation_error",
                        "rate_limited",
                        "server_error",
                    ],
                },
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
                "correlation_id": {"type": ["string", "null"]},
            },
        }
    },
}

ERROR_DESCRIPTIONS = {
    400: "Malformed request: body not JSON or not an object, or a malformed header",
    401: "Missing, invalid or expired credentials (or webhook signature)",
    403: "Authenticated but not allowed (for example merchant_inactive)",
    404: "No such object for this merchant",
    405: "Method not allowed on this path",
    409: "Conflict with the current state",
    413: "Request body over the size limit",
    415: "Request body is not application/json",
    422: "A field is missing, unknown, of the wrong type or out of range",
    429: "Too many requests; see Retry-After",
    500: "Internal error; the correlation_id finds it in the logs",
    503: "A dependency is not configured or not reachable",
}

CORRELATION_ID_HEADER = {
    "description": "Echoes the request's X-Correlation-ID, or a new one: quote it to support",
    "required": True,
    "schema": {"type": "string"},
}
RETRY_AFTER_HEADER = {
    "description": "Seconds to wait before trying again",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
REPLAYED_HEADER = {
    "description": "`true` when this is the stored response of an earlier request with the "
    "same Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "enum": ["true"]},
}

# how each gateway signs its webhooks (the header named by its GatewayScheme)
SIGNATURE_DESCRIPTIONS = {
    "X-Signature": '`sha256=<hex HMAC-SHA256(WEBHOOK_SECRET, "<X-Timestamp>.<raw body>")>`; '
    "the X-Timestamp header (unix seconds) must be within 300 s of the server's clock",
    "Stripe-Signature": '`t=<unix>,v1=<hex HMAC-SHA256(STRIPE_WEBHOOK_SECRET, "<t>.<raw '
    'body>")>`, as Stripe signs; any v1 may match; 300 s tolerance',
    "x-paystack-signature": "hex HMAC-SHA512 of the raw body with PAYSTACK_SECRET_KEY",
    "verif-hash": "equal to FLUTTERWAVE_SECRET_HASH (v3); or send `flutterwave-signature`: "
    "base64 HMAC-SHA256 of the raw body with it",
}

SECURITY_SCHEMES = {
    "jwt": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Access token from auth/login, auth/register or auth/refresh",
    },
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "sk_...",
        "description": "An API key (sk_...) sent as a bearer token",
    },
}

TAGS = [
    {"name": "Auth", "description": "Register, sign in, tokens, profile and password"},
    {"name": "API keys", "description": "Secret keys for server-to-server integrations"},
    {"name": "Payment methods", "description": "Cards, bank accounts, mobile money and more"},
    {"name": "Payments", "description": "Initialize, track, move through states and refund"},
    {"name": "Gateway webhooks", "description": "Signed notifications from payment gateways"},
    {"name": "Events", "description": "Every change, as the outbox recorded it"},
    {"name": "Webhook endpoints", "description": "Your endpoints, and deliveries to them"},
]


def _error_statuses(op: ApiOperation) -> set[int]:
    statuses = {400, 500, 503, 405} | set(op.errors)
    if op.auth:
        statuses |= {401, 403, 429}
    if op.body is not None or op.raw_body:
        statuses |= {413, 415, 422}
    if op.query is not None:
        statuses.add(422)
    if path_parameters(op.path):
        statuses.add(404)
    if op.idempotent:
        statuses |= {409, 422}
    if op.moves_money:
        statuses.add(403)
    return statuses


def _collect_models(ops: list[ApiOperation]):
    pairs = []
    for op in ops:
        if op.body is not None:
            pairs.append((op.body, "validation"))
        if op.query is not None:
            pairs.append((op.query, "validation"))
        if op.response is not None:
            pairs.append((op.response, "serialization"))
        for _status, model, _desc in op.extra_responses:
            if model is not None:
                pairs.append((model, "serialization"))
    unique = list(dict.fromkeys(pairs))
    refs, defs = models_json_schema(unique, ref_template="#/components/schemas/{model}")
    return refs, defs.get("$defs", {})


def _query_parameters(model: type[BaseModel], schema_defs: dict) -> list[dict]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        param = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            param["description"] = description
        params.append(param)
    return params


def _error_response(status: int) -> dict:
    type_, code, message, details = ERROR_EXAMPLES.get(status, ERROR_EXAMPLES[400])
    headers = {CORRELATION_HEADER: CORRELATION_ID_HEADER}
    if status == 429:
        headers["Retry-After"] = RETRY_AFTER_HEADER
    example = {
        "error": {
            "type": type_,
            "code": code,
            "message": message,
            "details": details,
            "correlation_id": CORRELATION_EXAMPLE,
        }
    }
    return {
        "description": ERROR_DESCRIPTIONS.get(status, "Error"),
        "headers": headers,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/Error"},
                "example": example,
            }
        },
    }


def _path_parameter(name: str) -> dict:
    if name == "reference":
        return {
            "name": name,
            "in": "path",
            "required": True,
            "description": "The payment's reference (pay_...)",
            "schema": {"type": "string"},
            "example": "pay_3kTq9v0bWw2mXy7LrN1aZpQe",
        }
    # ids are UUIDs: anything else is simply not found (404)
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": "Object id (UUID)",
        "schema": {"type": "string", "format": "uuid"},
    }


# a POST that stores no response (public ones: no merchant to scope a key to; secret-bearing
# ones: the stored response would keep the secret) is not shown the header it would ignore
IDEMPOTENCY_PARAMETER = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": "Retry-safe key (1-255 printable ASCII), kept 24 h per merchant: a retry with "
    "the same key and body replays the first response (Idempotent-Replayed: true) and does "
    "nothing else; another body answers 422 idempotency_key_reused; the same key while the "
    "first request runs answers 409 idempotency_key_in_use.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    "example": "order-1234-attempt-1",
}


def _security(op: ApiOperation, security_schemes: dict) -> list[dict]:
    if op.auth:
        return [{scheme: []} for scheme in op.auth]
    if op.signature_header:
        scheme = "sig_" + op.signature_header.lower().replace("-", "_")
        security_schemes[scheme] = {
            "type": "apiKey",
            "in": "header",
            "name": op.signature_header,
            "description": SIGNATURE_DESCRIPTIONS.get(
                op.signature_header, "Gateway signature of the raw body"
            ),
        }
        return [{scheme: []}]
    return []


def _operation_id(op: ApiOperation) -> str:
    raw = f"{op.method.lower()}_{op.path.strip('/').replace('/', '_')}"
    for char in "{}":
        raw = raw.replace(char, "")
    return raw.replace("-", "_").replace(".", "_")


def build_document(operations: list[ApiOperation], server_url: str = SERVER_PREFIX) -> dict:
    ops = sorted(operations, key=lambda o: (o.path, o.method))
    refs, schemas = _collect_models(ops)
    schemas["Error"] = ERROR_SCHEMA
    security_schemes = dict(SECURITY_SCHEMES)
    paths: dict[str, dict] = {}
    for op in ops:
        parameters = [_path_parameter(name) for name in path_parameters(op.path)]
        if op.query is not None:
            parameters += _query_parameters(op.query, schemas)
        if op.idempotent:
            parameters.append(IDEMPOTENCY_PARAMETER)
        if op.signature_header == "X-Signature":
            parameters.append(
                {
                    "name": "X-Timestamp",
                    "in": "header",
                    "required": True,
                    "description": "Unix seconds the signature was made at (300 s tolerance)",
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                }
            )
        headers = {CORRELATION_HEADER: CORRELATION_ID_HEADER}
        if op.idempotent:
            headers[REPLAY_HEADER] = REPLAYED_HEADER
        responses: dict[str, dict] = {}
        if op.response is None:
            responses[str(op.status)] = {"description": "Done; no content", "headers": headers}
        else:
            schema_ref = refs[(op.response, "serialization")]
            example = op.response_example or example_for(schema_ref, schemas)
            responses[str(op.status)] = {
                "description": "Success",
                "headers": headers,
                "content": {"application/json": {"schema": schema_ref, "example": example}},
            }
        for status, model, description in op.extra_responses:
            entry = {"description": description, "headers": headers}
            if model is not None:
                entry["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
            responses[str(status)] = entry
        for status in sorted(_error_statuses(op)):
            responses.setdefault(str(status), _error_response(status))
        operation = {
            "operationId": _operation_id(op),
            "summary": op.summary,
            "tags": [op.tag],
            "security": _security(op, security_schemes),
            "responses": responses,
        }
        if op.description:
            operation["description"] = op.description
        if parameters:
            operation["parameters"] = parameters
        if op.body is not None:
            body_ref = refs[(op.body, "validation")]
            example = op.request_example or request_example_for(body_ref, schemas)
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body_ref, "example": example}},
            }
        elif op.raw_body:
            content = {"schema": {"type": "object"}}
            if op.request_example is not None:
                content["example"] = op.request_example
            operation["requestBody"] = {"required": True, "content": {"application/json": content}}
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "payportal API",
            "version": API_VERSION,
            "description": API_DESCRIPTION,
        },
        "servers": [{"url": server_url}],
        "tags": TAGS,
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": security_schemes},
    }


def document_bytes(registry) -> bytes:
    cached = getattr(registry, "openapi_document", None)
    if cached is None:
        cached = json.dumps(build_document(registry.api_operations)).encode()
        registry.openapi_document = cached
    return cached


@view_config(
    route_name="api",
    context=ApiRoot,
    name="openapi.json",
    request_method="GET",
    permission=NO_PERMISSION_REQUIRED,
)
def openapi_json(request):
    return Response(
        body=document_bytes(request.registry), content_type="application/json", charset="utf-8"
    )


@view_config(
    route_name="api_docs", renderer="openapi/swagger.jinja2", permission=NO_PERMISSION_REQUIRED
)
def swagger_ui(request):
    return {"spec_url": request.application_url + SERVER_PREFIX + "/openapi.json"}


def includeme(config):
    import swagger_ui as swagger_ui_package

    assets = os.path.join(os.path.dirname(swagger_ui_package.__file__), "static")
    config.add_route("api_docs", "/api/docs")
    config.add_static_view(
        "api/docs/assets", assets, cache_max_age=86400, permission=NO_PERMISSION_REQUIRED
    )
