"""Response conformance: every /api/v1 response a webtest client receives is checked against the
OpenAPI document of the app that answered (operation, status, media type, headers, JSON Schema
2020-12 of the body), so the reference cannot drift from what the API really sends."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass

import webtest
from jsonschema import Draft202012Validator

from payportal.openapi import SERVER_PREFIX, document_bytes

_TEMPLATE_PARAM = re.compile(r"{\w+}")
# served by the documentation mechanism itself, not an operation of the API
UNDOCUMENTED_PATHS = frozenset({SERVER_PREFIX + "/openapi.json"})


def _path_pattern(template: str) -> re.Pattern:
    literals = _TEMPLATE_PARAM.split(SERVER_PREFIX + template)
    return re.compile("^" + "[^/]+".join(re.escape(part) for part in literals) + "$")


class ContractViolation(AssertionError):
    """An API response the OpenAPI document does not describe."""


@dataclass(frozen=True)
class DocumentedPath:
    template: str
    pattern: re.Pattern
    operations: dict


class ResponseContract:
    """The OpenAPI document of one app, ready to check its responses."""

    def __init__(self, document: dict):
        self.document = document
        self.components = document["components"]
        paths = [
            DocumentedPath(template, _path_pattern(template), operations)
            for template, operations in document["paths"].items()
        ]
        # a literal segment wins over a parameter: /payments/statistics/summary is not a payment
        self.paths = sorted(paths, key=lambda p: len(_TEMPLATE_PARAM.findall(p.template)))
        self._validators: dict[str, Draft202012Validator] = {}

    def validator(self, schema: dict) -> Draft202012Validator:
        key = json.dumps(schema, sort_keys=True)
        found = self._validators.get(key)
        if found is None:
            # the document's refs are '#/components/...': give the schema the same root
            found = Draft202012Validator(
                {**schema, "components": self.components},
                format_checker=Draft202012Validator.FORMAT_CHECKER,
            )
            self._validators[key] = found
        return found

    def documented_response(self, method: str, path: str, status: int) -> tuple[str, dict | None]:
        """(where, the documented response) — None when the document has no such response."""
        for documented in self.paths:
            if documented.pattern.match(path):
                operation = documented.operations.get(method.lower())
                if operation is None:
                    continue
                where = f"{method} {documented.template}"
                return where, operation["responses"].get(str(status))
        # an unknown path or method is not an operation: only the error envelope may answer it
        where = f"{method} {path} (no documented operation)"
        if status in (404, 405):
            return where, {
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            }
        return where, None

    def check(self, method: str, path: str, response) -> None:
        where, documented = self.documented_response(method, path, response.status_int)
        if documented is None:
            raise ContractViolation(f"{where}: status {response.status_int} is not documented")
        for name, header in documented.get("headers", {}).items():
            if header.get("required") and name not in response.headers:
                raise ContractViolation(f"{where} {response.status_int}: no {name} header")
        content = documented.get("content")
        if content is None:
            if response.body:
                raise ContractViolation(
                    f"{where} {response.status_int}: documented without a body, sent "
                    f"{response.body[:200]!r}"
                )
            return
        media = content.get(response.content_type)
        if media is None:
            raise ContractViolation(
                f"{where} {response.status_int}: media type {response.content_type!r} is not "
                f"one of {sorted(content)}"
            )
        body = json.loads(response.body)
        errors = sorted(
            self.validator(media["schema"]).iter_errors(body), key=lambda e: list(e.path)
        )
        if errors:
            first = errors[0]
            location = "/".join(str(p) for p in first.absolute_path) or "(body)"
            raise ContractViolation(
                f"{where} {response.status_int}: body does not match the documented schema at "
                f"{location}: {first.message}\nbody: {response.body[:2000]!r}"
            )


def contract_for(registry) -> ResponseContract:
    contract = getattr(registry, "payportal_response_contract", None)
    if contract is None:
        contract = ResponseContract(json.loads(document_bytes(registry)))
        registry.payportal_response_contract = contract
    return contract


def check_api_response(app, method: str, path: str, response) -> None:
    """Raise ContractViolation when an /api/v1 response is not what the document promises."""
    if not path.startswith(SERVER_PREFIX + "/") or path in UNDOCUMENTED_PATHS:
        return
    if method in ("OPTIONS", "HEAD"):  # CORS preflights and HEAD carry no API body
        return
    registry = getattr(app, "registry", None)
    if registry is None or not hasattr(registry, "api_operations"):
        return
    contract_for(registry).check(method, path, response)


@contextlib.contextmanager
def checking_webtest_responses():
    """While active, every webtest.TestApp request to /api/v1 has its response checked."""
    original = webtest.TestApp.do_request

    def do_request(self, req, status=None, expect_errors=None):
        method, path = req.method, req.path_info
        response = original(self, req, status=status, expect_errors=expect_errors)
        check_api_response(self.app, method, path, response)
        return response

    webtest.TestApp.do_request = do_request
    try:
        yield
    finally:
        webtest.TestApp.do_request = original
