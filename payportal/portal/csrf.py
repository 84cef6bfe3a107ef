"""CSRF protection for every unsafe request to the dashboard and the operator console.

A signed-in browser must echo its session's token (hidden `csrf_token` field or `X-CSRF-Token`
header). Before sign-in (the sign-in and sign-up forms) the token is a random double-submit
cookie, so a third-party page cannot sign a victim into an account either. Bearer-token API
calls never carry the cookie, so they need no token.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from payportal.errors import PermissionDenied
from payportal.portal.sessions import is_local

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PROTECTED_ROUTES = frozenset({"portal", "admin"})
ANONYMOUS_COOKIE = "payportal-csrf"


class CsrfRejected(PermissionDenied):
    code = "csrf_failed"

    def __init__(self):
        super().__init__(
            "This form has expired or was sent from another site. Reload the page and try again."
        )


def _anonymous_cookie_name(settings) -> str:
    return ANONYMOUS_COOKIE if is_local(settings) else f"__Host-{ANONYMOUS_COOKIE}"


def csrf_token(request) -> str:
    """The token forms on this page must send back (reified as request.csrf_token)."""
    active = request.dashboard_session
    if active is not None:
        return active.csrf_token
    settings = request.app_settings
    name = _anonymous_cookie_name(settings)
    token = request.cookies.get(name, "")
    if len(token) != 43:
        token = secrets.token_urlsafe(32)

        def set_cookie(request, response):
            response.set_cookie(
                name, token, path="/", secure=not is_local(settings), httponly=True, samesite="Lax"
            )

        request.add_response_callback(set_cookie)
    return token


def _expected_token(request) -> str | None:
    active = request.dashboard_session
    if active is not None:
        return active.csrf_token
    return request.cookies.get(_anonymous_cookie_name(request.app_settings)) or None


def _same_origin(request) -> bool:
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        # browsers omit Origin on some same-site form posts; the token still has to match
        return origin is None
    given = urlsplit(origin)
    return (given.scheme, given.netloc) == (request.scheme, request.host)


def check_csrf(request) -> None:
    expected = _expected_token(request)
    supplied = request.headers.get(HEADER) or request.POST.get(FIELD, "")
    if (
        not expected
        or not supplied
        or not hmac.compare_digest(expected.encode(), str(supplied).encode())
        or not _same_origin(request)
    ):
        raise CsrfRejected()


def csrf_protected_view(view, info):
    """View deriver: wrap every view of the dashboard and admin routes."""
    if info.exception_only or info.options.get("route_name") not in PROTECTED_ROUTES:
        return view

    def csrf_checked_view(context, request):
        if request.method not in SAFE_METHODS:
            check_csrf(request)
        return view(context, request)

    return csrf_checked_view


def includeme(config):
    config.add_request_method(csrf_token, "csrf_token", reify=True)
    config.add_view_deriver(csrf_protected_view)
