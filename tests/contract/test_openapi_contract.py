"""The OpenAPI document is the API's whole reference: valid OpenAPI 3.1, exactly the registered
routes, the paths of ../shared/API.md, and for each operation its schemas, examples that fit
them, every response it can give, its security, Idempotency-Key on POSTs and its tag."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from webob import Response

from payportal.openapi import TAGS
from tests.contract.conformance import ContractViolation, ResponseContract

API_MD = Path(__file__).resolve().parents[3] / "shared" / "API.md"
METHODS = ("get", "post", "put", "patch", "delete")
# API.md groups endpoints under these headings; the document tags them the same way
TAG_BY_PREFIX = {
    "/auth/": "Auth",
    "/api-keys": "API keys",
    "/payment-methods": "Payment methods",
    "/payments": "Payments",
    "/webhooks/": "Gateway webhooks",
    "/events": "Events",
    "/webhook-endpoints": "Webhook endpoints",
}
PUBLIC = {
    ("post", "/auth/register"),
    ("post", "/auth/login"),
    ("post", "/auth/refresh"),
    ("post", "/auth/logout"),
    ("post", "/auth/forgot-password"),
    ("post", "/auth/reset-password"),
}
GATEWAY_WEBHOOKS = {"/webhooks/payment", "/webhooks/stripe", "/webhooks/paystack"} | {
    "/webhooks/flutterwave"
}
# their responses hold a secret: a stored copy would keep it for a day, so a retry does it again
SECRET_BEARING = {
    ("post", "/api-keys"),
    ("post", "/auth/change-password"),
    ("post", "/webhook-endpoints"),
}
# API.md's shorthand line "GET, GET `{id}`, PATCH ..., DELETE" names these without their path
API_MD_SHORTHAND = {
    ("get", "/webhook-endpoints"),
    ("get", "/webhook-endpoints/{id}"),
    ("patch", "/webhook-endpoints/{id}"),
    ("delete", "/webhook-endpoints/{id}"),
}
API_MD_ENDPOINT = re.compile(
    r"((?:(?:GET|POST|PUT|PATCH|DELETE)\s*/\s*)*(?:GET|POST|PUT|PATCH|DELETE))\s+`([a-z][^`?]*)`"
)


@pytest.fixture(scope="module")
def document(wsgi_app):
    import webtest

    return webtest.TestApp(wsgi_app).get("/api/v1/openapi.json").json


def operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def schema_validator(document, schema):
    return Draft202012Validator(
        {**schema, "components": document["components"]},
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_the_document_has_exactly_the_registered_api_routes(wsgi_app, document):
    documented = {(method, path) for method, path, _op in operations(document)}
    registered_views = set()
    for item in wsgi_app.registry.introspector.get_category("views"):
        view = item["introspectable"]
        if view["route_name"] != "api":
            continue
        path = getattr(view["context"], "path_template", None)
        name = view["name"]
        if name == "openapi.json":  # the document itself
            continue
        full = path + (f"/{name}" if name else "")
        methods = view["request_methods"]
        for method in (methods,) if isinstance(methods, str) else methods or ():
            registered_views.add((method.lower(), full))
    recorded = {(op.method.lower(), op.path) for op in wsgi_app.registry.api_operations}
    assert registered_views - documented == set(), "registered but missing from the document"
    assert documented - registered_views == set(), "documented but no view answers it"
    assert recorded == documented


@pytest.mark.skipif(not API_MD.exists(), reason="../shared/API.md is not beside this checkout")
def test_the_document_has_the_paths_of_api_md(document):
    promised = set()
    for methods, path in API_MD_ENDPOINT.findall(API_MD.read_text()):
        for method in re.split(r"\s*/\s*", methods):
            promised.add((method.lower(), "/" + path.strip()))
    documented = {(method, path) for method, path, _op in operations(document)}
    assert promised - documented == set(), "API.md promises these"
    assert documented - promised - API_MD_SHORTHAND == set(), "API.md does not list these"


@pytest.mark.parametrize("part", ["summary", "description", "operationId"])
def test_every_operation_has_its_prose(document, part):
    missing = [f"{m.upper()} {p}" for m, p, op in operations(document) if not op.get(part)]
    assert missing == []


def test_operations_are_tagged_as_api_md_groups_them(document):
    assert [tag["name"] for tag in document["tags"]] == list(TAG_BY_PREFIX.values())
    assert {t["name"] for t in TAGS} == set(TAG_BY_PREFIX.values())
    for method, path, operation in operations(document):
        prefix = next(p for p in TAG_BY_PREFIX if path.startswith(p))
        expected = TAG_BY_PREFIX[prefix]
        # the simulator is a gateway's webhook played by the merchant, as API.md lists it
        assert operation["tags"] == [expected], (method, path)


def test_every_operation_declares_how_it_authenticates(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["jwt"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["jwt"]["description"],
    }
    assert schemes["apiKey"]["scheme"] == "bearer"
    for method, path, operation in operations(document):
        security = operation["security"]
        if (method, path) in PUBLIC:
            assert security == [], path
        elif path in GATEWAY_WEBHOOKS:
            (requirement,) = security
            (scheme,) = requirement
            assert schemes[scheme]["type"] == "apiKey"
            assert schemes[scheme]["in"] == "header"
            assert (
                "HMAC" in schemes[scheme]["description"]
                or "equal" in (schemes[scheme]["description"])
            )
        else:
            assert {name for need in security for name in need} <= {"jwt", "apiKey"}
            assert {"jwt": []} in security, path
            assert "401" in operation["responses"], path


def test_every_merchant_post_takes_an_idempotency_key(document):
    for method, path, operation in operations(document):
        names = {p["name"] for p in operation.get("parameters", [])}
        takes_key = (
            method == "post"
            and (method, path) not in PUBLIC | SECRET_BEARING
            and path not in GATEWAY_WEBHOOKS
        )
        assert ("Idempotency-Key" in names) is takes_key, path
        if takes_key:
            headers = operation["responses"]["201" if "201" in operation["responses"] else "200"]
            assert "Idempotent-Replayed" in headers["headers"], path


def test_every_error_status_answers_the_envelope_with_an_example(document):
    for _method, path, operation in operations(document):
        responses = operation["responses"]
        assert {"400", "500"} <= set(responses), path
        for status, response in responses.items():
            assert "X-Correlation-ID" in response["headers"], (path, status)
            if int(status) < 400:
                continue
            media = response["content"]["application/json"]
            assert media["schema"] == {"$ref": "#/components/schemas/Error"}, (path, status)
            errors = list(schema_validator(document, media["schema"]).iter_errors(media["example"]))
            assert errors == [], (path, status)
        if "429" in responses:
            assert responses["429"]["headers"]["Retry-After"]["required"] is True
        if operation.get("requestBody"):
            assert {"413", "415", "422"} <= set(responses), path


def test_every_example_fits_its_schema(document):
    checked = 0
    for method, path, operation in operations(document):
        media = []
        if "requestBody" in operation:
            media.append(("request", operation["requestBody"]["content"]["application/json"]))
        for status, response in operation["responses"].items():
            if int(status) < 400 and "content" in response:
                media.append((status, response["content"]["application/json"]))
        for where, content in media:
            assert "example" in content, (method, path, where)
            errors = [
                f"{list(e.absolute_path)}: {e.message}"
                for e in schema_validator(document, content["schema"]).iter_errors(
                    content["example"]
                )
            ]
            assert errors == [], (method, path, where)
            checked += 1
    # every operation answers JSON on success but the six that answer 202/204
    assert checked >= len(list(operations(document)))


def test_swagger_ui_can_authorize_and_try_calls_on_this_server(testapp, document):
    page = testapp.get("/api/docs")
    assert 'data-spec-url="http://localhost/api/v1/openapi.json"' in page.text
    # a relative server: "Try it out" calls the very host that served the page
    assert document["servers"] == [{"url": "/api/v1"}]
    # bearer schemes: Swagger UI's Authorize dialog takes a token and sends it on every call
    assert {
        s["scheme"] for s in document["components"]["securitySchemes"].values() if "scheme" in s
    }
    assert {"jwt", "apiKey"} <= set(document["components"]["securitySchemes"])


def test_the_conformance_check_refuses_what_the_document_does_not_promise(document):
    contract = ResponseContract(document)

    def response(status: int, body: dict | None):
        answer = Response(status=status)
        answer.headers["X-Correlation-ID"] = "c0ffee"
        if body is not None:
            answer.content_type = "application/json"
            answer.body = json.dumps(body).encode()
        return answer

    not_found = {
        "error": {
            "type": "not_found",
            "code": "not_found",
            "message": "no such resource",
            "details": [],
            "correlation_id": "c0ffee",
        }
    }
    contract.check("GET", "/api/v1/payments/pay_1", response(404, not_found))
    with pytest.raises(ContractViolation, match="status 418 is not documented"):
        contract.check("GET", "/api/v1/payments/pay_1", response(418, not_found))
    with pytest.raises(ContractViolation, match="does not match the documented schema"):
        contract.check("GET", "/api/v1/payments/pay_1", response(200, {"payment": {"id": 1}}))
    with pytest.raises(ContractViolation, match="documented without a body"):
        contract.check("DELETE", "/api/v1/api-keys/x", response(204, {"deleted": True}))
    missing_header = response(404, not_found)
    del missing_header.headers["X-Correlation-ID"]
    with pytest.raises(ContractViolation, match="no X-Correlation-ID header"):
        contract.check("GET", "/api/v1/payments/pay_1", missing_header)
