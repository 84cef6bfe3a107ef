"""Domain error base classes, and the exception views that turn any failure into HTTP once.

Under /api every failure is the JSON envelope of the API contract; elsewhere an HTML page.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any, ClassVar

from pyramid.exceptions import PredicateMismatch
from pyramid.httpexceptions import HTTPException, HTTPForbidden, HTTPNotFound
from pyramid.response import Response
from pyramid.view import exception_view_config, forbidden_view_config, notfound_view_config
from pyramid_retry import is_error_retryable, mark_error_retryable
from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)


class PayportalError(Exception):
    """A failure a client caused or should know about; carries its place in the envelope."""

    status: ClassVar[int] = 400
    type: ClassVar[str] = "invalid_request"
    code: ClassVar[str] = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or []
        self.headers = headers or {}


class InvalidRequest(PayportalError):
    status, type, code = 400, "invalid_request", "invalid_request"


class AuthenticationFailed(PayportalError):
    status, type, code = 401, "authentication_error", "authentication_failed"


class PermissionDenied(PayportalError):
    status, type, code = 403, "permission_error", "permission_denied"


class MerchantInactive(PermissionDenied):
    code = "merchant_inactive"

    def __init__(self, status: str):
        super().__init__(
            f"merchant account is {status}: money-moving requests need an active account"
        )


class NotFound(PayportalError):
    status, type, code = 404, "not_found", "not_found"


class MethodNotAllowed(PayportalError):
    status, type, code = 405, "invalid_request", "method_not_allowed"


class Conflict(PayportalError):
    status, type, code = 409, "conflict", "conflict"


class PayloadTooLarge(PayportalError):
    status, type, code = 413, "invalid_request", "payload_too_large"


class UnsupportedMediaType(PayportalError):
    status, type, code = 415, "invalid_request", "unsupported_media_type"


class ValidationFailed(PayportalError):
    status, type, code = 422, "validation_error", "invalid_field"


class RateLimited(PayportalError):
    status, type, code = 429, "rate_limited", "rate_limited"

    def __init__(self, message: str, retry_after: int, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = max(1, int(retry_after))
        self.headers["Retry-After"] = str(self.retry_after)


class ServiceUnavailable(PayportalError):
    status, type, code = 503, "server_error", "service_unavailable"


def is_api_request(request) -> bool:
    return request.path_info.startswith("/api/")


def error_envelope(
    request, status: int, type_: str, code: str, message: str, details: list | None = None
) -> dict:
    return {
        "error": {
            "type": type_,
            "code": code,
            "message": message,
            "details": details or [],
            "correlation_id": getattr(request, "correlation_id", None),
        }
    }


def json_error_response(
    request,
    status: int,
    type_: str,
    code: str,
    message: str,
    details: list | None = None,
    headers: dict | None = None,
) -> Response:
    body = json.dumps(error_envelope(request, status, type_, code, message, details))
    response = Response(
        body=body.encode(), status=status, content_type="application/json", charset="utf-8"
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def html_error_response(request, status: int, title: str, message: str) -> Response:
    from pyramid.renderers import render_to_response

    response = render_to_response(
        "errors/error.jinja2",
        {"status": status, "title": title, "message": message},
        request=request,
    )
    response.status_int = status
    return response


def _abort_transaction(request, exc: BaseException | None = None) -> None:
    """An error response must never commit what the failed request half-wrote.

    A serialization failure or deadlock is tagged retryable first: pyramid_tm does not tag the
    error of a doomed transaction, and pyramid_retry only runs a request again for a tagged one.
    """
    tm = getattr(request, "tm", None)
    if tm is None:
        return
    with contextlib.suppress(Exception):  # no active transaction to doom is fine
        transaction = tm.get()
        if exc is not None and transaction.isRetryableError(exc):
            mark_error_retryable(exc)
        transaction.doom()


@exception_view_config(PayportalError)
def payportal_error_view(exc: PayportalError, request):
    _abort_transaction(request, exc)
    if is_api_request(request):
        return json_error_response(
            request, exc.status, exc.type, exc.code, exc.message, exc.details, exc.headers
        )
    return html_error_response(request, exc.status, exc.type.replace("_", " ").title(), exc.message)


def _allowed_methods(request) -> list[str]:
    """The methods some view takes at the request's route, resource and view name (from
    Pyramid's view introspection, so the API operations and the plain views such as
    openapi.json alike), for the Allow header a 405 must carry. Pyramid answers HEAD wherever
    it answers GET."""
    route = request.matched_route.name if request.matched_route else None
    methods: set[str] = set()
    for view in request.registry.introspector.get_category("views"):
        intr = view["introspectable"]
        wanted = intr["request_methods"]
        if wanted is None or intr["route_name"] != route or intr["name"] != request.view_name:
            continue
        context = intr["context"]
        if isinstance(context, type):
            if not isinstance(request.context, context):
                continue
        elif context is not None and not context.providedBy(request.context):
            continue
        methods.update((wanted,) if isinstance(wanted, str) else wanted)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


@notfound_view_config()
def notfound_view(exc, request):
    _abort_transaction(request)
    if is_api_request(request):
        # a view exists for this name but not for this method; extra segments make it a 404
        if isinstance(exc, PredicateMismatch) and not request.subpath:
            allowed = _allowed_methods(request)
            return json_error_response(
                request,
                405,
                "invalid_request",
                "method_not_allowed",
                f"{request.method} is not allowed on this path",
                headers={"Allow": ", ".join(allowed)} if allowed else None,
            )
        return json_error_response(request, 404, "not_found", "not_found", "no such resource")
    return html_error_response(request, 404, "Not found", "That page does not exist.")


@forbidden_view_config()
def forbidden_view(exc, request):
    _abort_transaction(request)
    identity = request.identity
    if is_api_request(request):
        if identity is None:
            return json_error_response(
                request,
                401,
                "authentication_error",
                "authentication_required",
                "valid credentials are required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return json_error_response(
            request,
            403,
            "permission_error",
            "permission_denied",
            "these credentials may not do this",
        )
    if identity is None and request.method == "GET":
        login = "/admin/login" if request.path_info.startswith("/admin") else "/dashboard/login"
        from pyramid.httpexceptions import HTTPSeeOther

        return HTTPSeeOther(
            location=request.application_url
            + login
            + "?next="
            + request.path_qs.replace("&", "%26")
        )
    return html_error_response(request, 403, "Forbidden", "You may not do this.")


@exception_view_config(HTTPException)
def http_exception_view(exc: HTTPException, request):
    if isinstance(exc, HTTPNotFound):
        return notfound_view(exc, request)
    if isinstance(exc, HTTPForbidden):
        return forbidden_view(exc, request)
    if exc.code is not None and exc.code < 400:
        return exc
    _abort_transaction(request, exc)
    if is_api_request(request):
        return json_error_response(
            request,
            exc.code,
            "server_error" if exc.code >= 500 else "invalid_request",
            exc.title.lower().replace(" ", "_"),
            exc.explanation or exc.title,
        )
    return html_error_response(request, exc.code, exc.title, exc.explanation or exc.title)


# SQLSTATE classes of a lost or refused connection: 08 connection exception, 57P admin shutdown
_UNREACHABLE_SQLSTATES = ("08", "57P")


def database_unreachable(exc: Exception) -> bool:
    """A connection that failed or was lost, or a pool with none to give (not a query error)."""
    if isinstance(exc, sa_exc.TimeoutError):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, sa_exc.OperationalError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(_UNREACHABLE_SQLSTATES)


@exception_view_config(Exception)
def server_error_view(exc: Exception, request):
    _abort_transaction(request, exc)
    correlation_id = getattr(request, "correlation_id", None)
    if is_error_retryable(request, exc):
        # a serialization failure or deadlock: pyramid_retry runs the request again
        log.warning(
            "retrying %s %s after %s [correlation_id=%s]",
            request.method,
            request.path_info,
            type(exc).__name__,
            correlation_id,
            extra={"correlation_id": correlation_id},
        )
    elif database_unreachable(exc):
        log.warning(
            "database unreachable on %s %s: %s [correlation_id=%s]",
            request.method,
            request.path_info,
            type(getattr(exc, "orig", None) or exc).__name__,
            correlation_id,
            extra={"correlation_id": correlation_id},
        )
    else:
        log.error(
            "unhandled error on %s %s [correlation_id=%s]",
            request.method,
            request.path_info,
            correlation_id,
            exc_info=exc,
            extra={"correlation_id": correlation_id},
        )
    if database_unreachable(exc):
        # the database went away (restart, failover, pool exhausted): a 503 tells clients to
        # retry; the traceback says nothing the one line does not
        message = "the database is not reachable right now; retry shortly"
        if is_api_request(request):
            return json_error_response(
                request,
                503,
                "server_error",
                "database_unavailable",
                message,
                headers={"Retry-After": "2"},
            )
        return html_error_response(request, 503, "Temporarily unavailable", message)
    message = "internal error; quote the correlation_id when reporting it"
    if is_api_request(request):
        return json_error_response(request, 500, "server_error", "internal_error", message)
    return html_error_response(request, 500, "Something went wrong", message)


def includeme(config):
    config.scan(__name__)
