"""Template helpers shared by the dashboard and the operator console: money, dates, badges,
links and the one-line notices shown after a form succeeds."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from urllib.parse import urlencode

from markupsafe import Markup, escape
from pyramid_jinja2 import IJinja2Environment, Jinja2TemplateRenderer

from payportal.money import format_money

# status -> badge tone (CSS modifier); unknown values fall back to neutral
BADGE_TONES = {
    "completed": "success",
    "active": "success",
    "succeeded": "success",
    "processed": "success",
    "enabled": "success",
    "pending": "warning",
    "processing": "info",
    "partially_refunded": "info",
    "parked": "info",
    "refunded": "neutral",
    "cancelled": "neutral",
    "expired": "neutral",
    "inactive": "neutral",
    "disabled": "neutral",
    "duplicate": "neutral",
    "ignored": "neutral",
    "failed": "danger",
    "disputed": "danger",
    "suspended": "danger",
    "blocked": "danger",
    "revoked": "danger",
    "mismatch": "danger",
}

# ?notice=<code> after a redirect: only these fixed sentences are ever shown
NOTICES = {
    "signed_out": "You are signed out.",
    "signed_up": "Welcome to payportal. Your account is ready.",
    "profile_saved": "Your profile is saved.",
    "password_changed": "Your password is changed. Other browsers were signed out.",
    "password_reset": "Your password is changed. Sign in with the new one.",
    "key_revoked": "The API key is revoked. Requests using it now fail.",
    "payment_created": "The payment is created. Send the checkout link to your customer.",
    "refunded": "The refund is recorded.",
    "cancelled": "The payment is cancelled.",
    "simulated": "The simulated gateway result is applied.",
    "method_saved": "The payment method is saved.",
    "method_default": "This payment method is now your default.",
    "method_deleted": "The payment method is deleted.",
    "endpoint_saved": "The webhook endpoint is saved.",
    "endpoint_deleted": "The webhook endpoint is deleted.",
    "delivery_resent": "The delivery was sent again; the new attempt is in the log below.",
    "status_changed": "The merchant's status is changed.",
}


def money(minor: int | None, currency: str | None) -> str:
    if minor is None or not currency:
        return "—"
    return format_money(int(minor), currency)


def timestamp(value: dt.datetime | None) -> str:
    """'26 Nov 2025, 15:33 UTC' — one unambiguous format on every page."""
    if value is None:
        return "—"
    return value.astimezone(dt.UTC).strftime("%d %b %Y, %H:%M UTC")


def short_date(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%d %b")


def humanize(value: object) -> str:
    text = str(value or "").replace("_", " ")
    return text[:1].upper() + text[1:]


def badge(status: object) -> Markup:
    return _badge(str(status))


@lru_cache(maxsize=256)
def _badge(value: str) -> Markup:
    """A table shows the same few statuses on every row: each badge is rendered once."""
    tone = BADGE_TONES.get(value, "neutral")
    return Markup('<span class="badge badge--{}">{}</span>').format(tone, humanize(value))


FACES = {"portal": "/dashboard", "admin": "/admin"}


def application_url(request) -> str:
    """request.application_url, worked out once per request: a page links dozens of times."""
    try:
        return request._portal_application_url
    except AttributeError:
        request._portal_application_url = request.application_url
        return request._portal_application_url


def url(request, face: str, *parts: object, **query: object) -> str:
    """/dashboard/<parts...>?query or /admin/...; None and '' query values are dropped."""
    prefix = FACES[face]
    path = "/".join(str(p).strip("/") for p in parts if p not in (None, ""))
    link = f"{application_url(request)}{prefix}/{path}"
    kept = {k: v for k, v in query.items() if v not in (None, "")}
    return f"{link}?{urlencode(kept)}" if kept else link


def notice(request) -> str | None:
    return NOTICES.get(request.GET.get("notice", ""))


def csrf_field(request) -> Markup:
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(
        escape(request.csrf_token)
    )


class TemplateRenderers:
    """The .jinja2 renderer factory: pyramid_jinja2's, less a failed lookup on every render.

    pyramid_jinja2's factory asks for '<view package>:<name>' before '<name>' each time a page
    renders. Our templates live in the top-level templates/ folder, so that first lookup always
    missed, and jinja2 does not remember misses: a file-system search and an exception per page
    (~40 µs). Names are looked up as given (jinja2.directories, or an asset spec with ':')."""

    def __call__(self, info):
        name = info.name
        environment = info.registry.getUtility(IJinja2Environment, name=".jinja2")
        return Jinja2TemplateRenderer(lambda: environment.get_template(name))


def register_helpers(config) -> None:
    def register():
        env = config.get_jinja2_environment()
        env.filters.update(
            money=money, timestamp=timestamp, short_date=short_date, humanize=humanize, badge=badge
        )
        env.globals.update(url=url, notice=notice, csrf_field=csrf_field)

    # after pyramid_jinja2 has built its environment
    config.action(None, register, order=999)
