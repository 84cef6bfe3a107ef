"""The API view decorator: schema in, schema out, permission, idempotency — and the OpenAPI
document built from the very same registrations, so the reference cannot drift from the code.

    @api_view(context=PaymentCollection, name="initialize", method="POST",
              body=InitializePayment, response=PaymentOut, status=201,
              permission=Permission.PAYMENTS_WRITE, tag="Payments", moves_money=True,
              summary="Initialize a payment")
    def initialize_payment_view(context, request, body): ...

`request_example` and `response_example` show in the document; without them an example is
derived from the schemas (payportal/openapi_examples.py).

The view returns a response-model instance (or anything `response.model_validate` accepts with
from_attributes), a `(status, model)` tuple to vary the status, or None for 204.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from collections.abc import Callable
from typing import Any

import venusian
from pydantic import BaseModel, ValidationError
from pyramid.response import Response

from payportal import idempotency
from payportal.errors import (
    InvalidRequest,
    MerchantInactive,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)

JSON_CONTENT_TYPES = frozenset({"application/json"})
_PATH_PARAM = re.compile(r"{(\w+)}")

# security requirements an operation may declare
AUTH_MERCHANT = ("jwt", "apiKey")  # bearer access token or bearer API key
AUTH_TOKEN_ONLY = ("jwt",)  # the API key may not do it (credential table)
AUTH_NONE: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ApiOperation:
    """Everything the OpenAPI builder needs to know about one registered API view."""

    method: str
    path: str
    context: type
    name: str
    permission: str | None
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    tag: str
    summary: str
    description: str
    auth: tuple[str, ...]
    errors: tuple[int, ...]
    idempotent: bool
    moves_money: bool
    extra_responses: tuple[tuple[int, type[BaseModel] | None, str], ...] = ()
    request_example: dict | None = None
    signature_header: str | None = None
    raw_body: bool = False
    response_example: dict | None = None


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    details = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = tuple(p for p in error["loc"] if p not in ("function-after", "function-before"))
        field = ".".join(str(p) for p in loc) or "body"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        details.append({"field": field, "message": message})
    return details


def raise_validation(exc: ValidationError) -> None:
    details = validation_details(exc)
    first = details[0]
    raise ValidationFailed(f"{first['field']}: {first['message']}", details=details) from None


def retry_attempts(request) -> int | None:
    """pyramid_retry's activate hook: one attempt for a body declared over the size limit.

    Retries need a replayable copy of the body, and making one reads it whole; a body that is
    refused anyway (413) is then never read at all. None: the configured number of attempts.
    """
    length = request.content_length
    if length is not None and length > request.registry.payportal_settings.max_body_bytes:
        return 1
    return None


def read_json_body(request, max_bytes: int) -> bytes:
    """The raw request body, after the size and media-type checks of the contract."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"request body is over {max_bytes} bytes")
    raw = request.body_file_seekable.read(max_bytes + 1)
    request.body_file_seekable.seek(0)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"request body is over {max_bytes} bytes")
    if request.content_type not in JSON_CONTENT_TYPES:
        raise UnsupportedMediaType("send the body as application/json")
    return raw


def _nul_field(value: Any, path: str) -> str | None:
    """Where the first NUL character sits in parsed input (None: nowhere)."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        where = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and "\x00" in key:
            return where
        found = _nul_field(item, where)
        if found is not None:
            return found
    return None


def refuse_nul(field: str) -> None:
    # PostgreSQL text cannot hold NUL: refused here as bad input, never a 500 from the INSERT
    raise ValidationFailed(
        f"{field}: must not contain NUL characters",
        details=[{"field": field, "message": "must not contain NUL characters"}],
    )


def parse_body(model: type[BaseModel], raw: bytes) -> BaseModel:
    if not raw.strip():
        raise InvalidRequest("request body must be a JSON object")
    try:
        parsed = model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors and errors[0]["type"] == "json_invalid":
            raise InvalidRequest("request body is not valid JSON") from None
        if (
            errors
            and not errors[0]["loc"]
            and errors[0]["type"] in {"model_type", "dict_type", "model_attributes_type"}
        ):
            raise InvalidRequest("request body must be a JSON object") from None
        raise_validation(exc)
        raise  # unreachable: raise_validation always raises
    if b"\\u0000" in raw:  # JSON can only carry NUL escaped
        field = _nul_field(parsed.model_dump(by_alias=True), "")
        if field is not None:
            refuse_nul(field)
    return parsed


def parse_query(model: type[BaseModel], request) -> BaseModel:
    params: dict[str, Any] = {}
    for key in request.GET:
        values = request.GET.getall(key)
        params[key] = values if len(values) > 1 else values[0]
        if _nul_field(values, "") is not None or "\x00" in key:
            refuse_nul(key)
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise_validation(exc)
        raise


def render(model: type[BaseModel] | None, result: Any, status: int, request) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple):
        status, result = result
    if result is None or model is None:
        return Response(status=204 if result is None else status)
    if not isinstance(result, model):
        result = model.model_validate(result, from_attributes=True)
    body = model.__pydantic_serializer__.to_json(result)
    response = Response(body=body, status=status, content_type="application/json", charset="utf-8")
    return response


def make_view(op: ApiOperation, func: Callable) -> Callable:
    wants_body = "body" in inspect.signature(func).parameters
    wants_query = "query" in inspect.signature(func).parameters

    def api_view_callable(context, request):
        if request.subpath:
            # traversal hands extra segments to the view: '/payments/initialize/x' is not a path
            raise NotFound("no such resource")
        request.registry.rate_limiter.check(request, op.path)
        if op.moves_money:
            identity = request.identity
            if identity is not None and identity.merchant_status != "active":
                raise MerchantInactive(identity.merchant_status or "unknown")
        kwargs: dict[str, Any] = {}
        raw = b""
        if op.body is not None or op.raw_body:
            raw = read_json_body(request, request.app_settings.max_body_bytes)
            if op.body is not None:
                parsed = parse_body(op.body, raw)
                if wants_body:
                    kwargs["body"] = parsed
        if op.query is not None:
            parsed_query = parse_query(op.query, request)
            if wants_query:
                kwargs["query"] = parsed_query
        replay = None
        claim = None
        if op.idempotent:
            claim, replay = idempotency.claim(request, raw)
        if replay is not None:
            return replay
        result = func(context, request, **kwargs)
        response = render(op.response, result, op.status, request)
        if claim is not None:
            idempotency.complete(request, claim, response)
        response.headers.update(getattr(request, "rate_limit_headers", {}))
        return response

    api_view_callable.__name__ = func.__name__
    api_view_callable.__doc__ = func.__doc__
    return api_view_callable


def api_view(
    *,
    context: type,
    method: str,
    name: str = "",
    permission: str | None,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    tag: str,
    summary: str,
    description: str = "",
    auth: tuple[str, ...] = AUTH_MERCHANT,
    errors: tuple[int, ...] = (),
    idempotent: bool | None = None,
    moves_money: bool = False,
    extra_responses=(),
    request_example: dict | None = None,
    signature_header: str | None = None,
    raw_body: bool = False,
    response_example: dict | None = None,
):
    """Register a JSON API view and its place in the OpenAPI document (see module docstring)."""
    method = method.upper()
    if idempotent is None:
        idempotent = method == "POST" and bool(auth)

    def decorator(func):
        op = ApiOperation(
            method=method,
            path=context.path_template + (f"/{name}" if name else ""),
            context=context,
            name=name,
            permission=permission,
            body=body,
            query=query,
            response=response,
            status=status,
            tag=tag,
            summary=summary,
            description=description or inspect.cleandoc(func.__doc__ or ""),
            auth=auth,
            errors=errors,
            idempotent=idempotent,
            moves_money=moves_money,
            extra_responses=tuple(extra_responses),
            request_example=request_example,
            signature_header=signature_header,
            raw_body=raw_body,
            response_example=response_example,
        )

        def callback(scanner, _name, _ob):
            config = scanner.config
            config.add_view(
                make_view(op, func),
                route_name="api",
                context=context,
                name=name,
                request_method=method,
                permission=permission,
            )
            registered = config.registry.api_operations

            def record():
                registered.append(op)

            config.action(("payportal.api_operation", method, op.path), record)

        venusian.attach(func, callback, category="pyramid")
        func.api_operation = op
        return func

    return decorator


def path_parameters(path: str) -> list[str]:
    return _PATH_PARAM.findall(path)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(
        body=json.dumps(data).encode(),
        status=status,
        content_type="application/json",
        charset="utf-8",
    )


def includeme(config):
    config.registry.api_operations = []
