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
from payportal.resources import ApiRoot

API_VERSION = "1.0.0"
SERVER_PREFIX = "/api/v1"

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
    statuses = {400, 500, 405} | set(op.errors)
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


def build_document(operations: list[ApiOperation], server_url: str = SERVER_PREFIX) -> dict:
    ops = sorted(operations, key=lambda o: (o.path, o.method))
    refs, schemas = _collect_models(ops)
    schemas["Error"] = ERROR_SCHEMA
    security_schemes = dict(SECURITY_SCHEMES)
    paths: dict[str, dict] = {}
    for op in ops:
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in path_parameters(op.path)
        ]
        if op.query is not None:
            parameters += _query_parameters(op.query, schemas)
        if op.idempotent:
            parameters.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "Retry-safe key (1-255 printable ASCII), kept 24 h per merchant",
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 255,
                        "pattern": "^[\\x20-\\x7e]+$",
                    },
                }
            )
        if op.auth:
            security = [{scheme: []} for scheme in op.auth]
        elif op.signature_header:
            scheme = "sig_" + op.signature_header.lower().replace("-", "_")
            security_schemes[scheme] = {
                "type": "apiKey",
                "in": "header",
                "name": op.signature_header,
                "description": "Gateway signature of the raw body",
            }
            security = [{scheme: []}]
        else:
            security = []
        responses: dict[str, dict] = {}
        if op.response is None:
            responses[str(op.status)] = {"description": "Done; no content"}
        else:
            responses[str(op.status)] = {
                "description": "Success",
                "content": {"application/json": {"schema": refs[(op.response, "serialization")]}},
            }
        for status, model, description in op.extra_responses:
            entry = {"description": description}
            if model is not None:
                entry["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
            responses[str(status)] = entry
        for status in sorted(_error_statuses(op)):
            responses.setdefault(
                str(status),
                {
                    "description": ERROR_DESCRIPTIONS.get(status, "Error"),
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            )
        operation = {
            "operationId": f"{op.method.lower()}_{op.path.strip('/').replace('/', '_')}".replace(
                "{", ""
            )
            .replace("}", "")
            .replace("-", "_")
            .replace(".", "_"),
            "summary": op.summary,
            "tags": [op.tag],
            "security": security,
            "responses": responses,
        }
        if op.description:
            operation["description"] = op.description
        if parameters:
            operation["parameters"] = parameters
        if op.body is not None:
            content = {"schema": refs[(op.body, "validation")]}
            if op.request_example is not None:
                content["example"] = op.request_example
            operation["requestBody"] = {"required": True, "content": {"application/json": content}}
        elif op.raw_body:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "payportal API",
            "version": API_VERSION,
            "description": "Multi-tenant payments: amounts are integers in the currency's "
            "minor unit; every list pages by cursor; every POST takes an "
            "Idempotency-Key.",
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
