"""Security headers on every HTML page: a script policy without inline code, no framing,
no MIME sniffing, a careful referrer, and HSTS wherever the site is served over HTTPS."""

from __future__ import annotations

from pyramid.events import NewResponse

from payportal.portal.sessions import is_local, realm_for_path

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HSTS = "max-age=63072000; includeSubDomains"


def add_security_headers(event: NewResponse) -> None:
    request, response = event.request, event.response
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if not is_local(request.registry.payportal_settings):
        headers.setdefault("Strict-Transport-Security", HSTS)
    if response.content_type == "text/html":
        # a page that brings its own policy (the API reference) keeps it
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
        if realm_for_path(request.path_info) is not None:
            # dashboard pages hold account data: never from a shared cache or the back button
            headers.setdefault("Cache-Control", "no-store")


def includeme(config):
    config.add_subscriber(add_security_headers, NewResponse)
