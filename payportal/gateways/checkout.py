"""The hosted test checkout: /checkout/<reference>, where the unguessable reference is the
capability. With simulation on, its Pay and Decline buttons drive the simulation path.

The forms carry a signed double-submit token: HMAC of a random cookie nonce and the payment
reference, so a token works only in the browser that loaded this payment's page.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import re
import secrets

import sqlalchemy as sa
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from payportal.db import utcnow
from payportal.errors import InvalidRequest, MerchantInactive, NotFound, PermissionDenied
from payportal.gateways import services
from payportal.merchants.models import Merchant, MerchantStatus
from payportal.money import format_money
from payportal.payments.models import Payment, PaymentStatus
from payportal.payments.state import InvalidTransition

ROUTE = "checkout"
CSRF_COOKIE = "payportal-checkout"
CSRF_FIELD = "csrf_token"
_NONCE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_REFERENCE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
# the button pressed -> what the simulated gateway reports
BUTTON_OUTCOMES = {"pay": "completed", "decline": "failed"}
DECLINE_REASON = "Declined at the test checkout"

# no script at all, nothing embedded, never framed, forms only back to us
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'none'",
        "style-src 'self'",
        "img-src 'self' data:",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # the URL is the capability: never hand it to another site
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

STATE_TEXT = {
    "payable": ("Ready to pay", "Choose an outcome for this test payment."),
    "waiting": ("Awaiting payment", "The payment gateway will confirm this payment."),
    "processing": ("Processing", "The payment gateway is confirming this payment."),
    "completed": ("Paid", "This payment is complete. Thank you."),
    "failed": ("Payment declined", "This payment did not go through."),
    "cancelled": ("Cancelled", "This payment was cancelled."),
    "expired": ("Link expired", "This payment link has expired. Ask the merchant for a new one."),
    "partially_refunded": ("Partially refunded", "Part of this payment was refunded."),
    "refunded": ("Refunded", "This payment was refunded."),
    "disputed": ("Disputed", "This payment is under dispute."),
    "unavailable": ("Unavailable", "This merchant cannot take payments right now."),
}


def _csrf_key(settings) -> bytes:
    # a key of its own, derived from a required secret, so no token doubles as anything else
    secret = settings.jwt_secret.encode()
    return hmac.new(secret, b"payportal checkout csrf", hashlib.sha256).digest()


def checkout_token(settings, nonce: str, reference: str) -> str:
    message = f"{nonce}:{reference}".encode()
    return hmac.new(_csrf_key(settings), message, hashlib.sha256).hexdigest()


def _add_security_headers(request) -> None:
    def set_headers(request, response):
        response.headers.update(SECURITY_HEADERS)

    request.add_response_callback(set_headers)


def _browser_nonce(request) -> str:
    """This browser's checkout nonce, minted (and set as a cookie) on its first visit."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if _NONCE.match(nonce):
        return nonce
    nonce = secrets.token_urlsafe(32)
    secure = request.app_settings.public_url.startswith("https://")

    def set_cookie(request, response):
        response.set_cookie(
            CSRF_COOKIE, nonce, path="/checkout", secure=secure, httponly=True, samesite="Lax"
        )

    request.add_response_callback(set_cookie)
    return nonce


def _load_payment(request) -> tuple[Payment, Merchant]:
    reference = request.matchdict["reference"]
    if not _REFERENCE.match(reference):
        raise NotFound("There is no payment at this address.")
    row = request.dbsession.execute(
        sa.select(Payment, Merchant)
        .join(Merchant, Merchant.id == Payment.merchant_id)
        .where(Payment.reference == reference)
    ).first()
    if row is None:
        raise NotFound("There is no payment at this address.")
    return row.Payment, row.Merchant


def checkout_state(payment: Payment, merchant: Merchant, simulation: bool, now: dt.datetime):
    """Which face the page shows: 'payable' (buttons), or the state instead of buttons."""
    status = PaymentStatus(payment.status)
    if status is PaymentStatus.PENDING and payment.expires_at and payment.expires_at <= now:
        return "expired"
    if status not in (PaymentStatus.PENDING, PaymentStatus.PROCESSING):
        return status.value
    if merchant.status != MerchantStatus.ACTIVE:
        return "unavailable"
    if simulation:
        return "payable"
    return "waiting" if status is PaymentStatus.PENDING else "processing"


@view_config(
    route_name=ROUTE,
    request_method="GET",
    renderer="checkout/checkout.jinja2",
    permission=NO_PERMISSION_REQUIRED,
)
def checkout_page(request):
    _add_security_headers(request)
    payment, merchant = _load_payment(request)
    settings = request.app_settings
    state = checkout_state(payment, merchant, settings.allow_simulation, utcnow())
    headline, message = STATE_TEXT[state]
    return {
        "merchant_name": merchant.business_name or merchant.name,
        "amount": format_money(payment.amount, payment.currency),
        "currency": payment.currency,
        "description": payment.description,
        "reference": payment.reference,
        "state": state,
        "headline": headline,
        "message": message,
        "failure_reason": payment.failure_reason if state == "failed" else None,
        "test_mode": settings.allow_simulation,
        "csrf_token": checkout_token(settings, _browser_nonce(request), payment.reference)
        if state == "payable"
        else None,
        "action_url": request.route_url(ROUTE, reference=payment.reference),
    }


@view_config(route_name=ROUTE, request_method="POST", permission=NO_PERMISSION_REQUIRED)
def checkout_submit(request):
    """Pay or Decline: the simulated gateway's answer, then back to the page (POST-redirect-GET)."""
    _add_security_headers(request)
    settings = request.app_settings
    if not settings.allow_simulation:
        raise NotFound("Test payments are switched off on this server.")
    payment, merchant = _load_payment(request)
    nonce = request.cookies.get(CSRF_COOKIE, "")
    supplied = request.POST.get(CSRF_FIELD, "")
    expected = checkout_token(settings, nonce, payment.reference)
    valid = hmac.compare_digest(expected.encode(), supplied.encode("utf-8", "replace"))
    if not _NONCE.match(nonce) or not valid:
        raise PermissionDenied(
            "This form has expired or was not sent from this page. Reload it and try again.",
            code="csrf_failed",
        )
    outcome = BUTTON_OUTCOMES.get(request.POST.get("outcome", ""))
    if outcome is None:
        raise InvalidRequest("Choose Pay or Decline.")
    if merchant.status != MerchantStatus.ACTIVE:
        raise MerchantInactive(str(merchant.status))
    if checkout_state(payment, merchant, True, utcnow()) == "payable":
        # a concurrent click may have got there first: it changed nothing here, the page shows it
        with contextlib.suppress(InvalidTransition):
            services.simulate_gateway_outcome(
                request.dbsession,
                settings,
                merchant_id=payment.merchant_id,
                reference=payment.reference,
                status=outcome,
                failure_reason=DECLINE_REASON if outcome == "failed" else None,
                actor="checkout",
                correlation_id=request.correlation_id,
            )
    return HTTPSeeOther(location=request.route_url(ROUTE, reference=payment.reference))
