"""CORS for /api/v1: allowed origins from settings, preflights answered, never credentials."""

from __future__ import annotations

import re

from pyramid.response import Response

from payportal.errors import json_error_response

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE"
ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Correlation-ID"
EXPOSED_HEADERS = (
    "X-Correlation-ID, Retry-After, Idempotent-Replayed, "
    "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
)
MAX_AGE = "600"
_LOCALHOST = re.compile(r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$")


def origin_allowed(origin: str, allowed: tuple[str, ...]) -> bool:
    """`*` allows any origin; `localhost` allows any loopback origin (development)."""
    if "*" in allowed or origin in allowed:
        return True
    return "localhost" in allowed and bool(_LOCALHOST.match(origin))


def cors_tween_factory(handler, registry):
    allowed = tuple(registry.payportal_settings.cors_origins)

    def cors_tween(request):
        origin = request.headers.get("Origin")
        if origin is None or not request.path_info.startswith("/api/"):
            return handler(request)
        permitted = origin_allowed(origin, allowed)
        preflight = (
            request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        )
        if preflight:
            if not permitted:
                return json_error_response(
                    request,
                    403,
                    "permission_error",
                    "origin_not_allowed",
                    f"origin {origin} may not call this API",
                )
            response = Response(status=204)
            response.headers.update(
                {
                    "Access-Control-Allow-Methods": ALLOWED_METHODS,
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": MAX_AGE,
                }
            )
        else:
            response = handler(request)
        response.vary = tuple(sorted(set(response.vary or ()) | {"Origin"}))
        if permitted:
            # A bearer token is sent explicitly, so credentials mode is never needed or allowed.
            response.headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response

    return cors_tween


def includeme(config):
    config.add_tween(
        "payportal.cors.cors_tween_factory", over="payportal.logging.correlation_tween_factory"
    )
