"""The operator console's pages: sign-in, merchants with status and volume, approve / suspend /
deactivate with a reason (the identity slice's change_merchant_status writes the audit log and
the event), and any merchant's payments, read-only."""

from __future__ import annotations

from urllib.parse import urlencode

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config, view_defaults

from payportal.admin import services
from payportal.admin.resources import (
    AdminMerchant,
    AdminMerchantCollection,
    AdminMerchantPayments,
    AdminPayment,
)
from payportal.db import utcnow
from payportal.errors import PayportalError, RateLimited
from payportal.merchants.credentials import RecordedFailure
from payportal.merchants.models import MerchantStatus
from payportal.merchants.schemas import Login
from payportal.merchants.services import authenticate_operator, change_merchant_status
from payportal.payments.schemas import PaymentOut
from payportal.payments.services import payment_timeline
from payportal.portal.deliveries import deliveries_by_event
from payportal.portal.forms import GENERAL, FormInvalid, form_values, validate
from payportal.portal.overview import period_start
from payportal.portal.payment_filters import payments_table
from payportal.portal.rollup import period_totals, settled_volumes
from payportal.portal.sessions import OPERATOR, sign_in, sign_out
from payportal.portal.templating import url
from payportal.resources import AdminRoot
from payportal.security import Permission

MERCHANTS_PAGE = 50
# the console's volume column and merchant page cover the last 30 days, as the dashboard does
VOLUME_DAYS = 30
# what an operator may do from each status, with the button's words
STATUS_ACTIONS = {
    MerchantStatus.PENDING: (("active", "Approve"), ("inactive", "Reject")),
    MerchantStatus.ACTIVE: (("suspended", "Suspend"), ("inactive", "Deactivate")),
    MerchantStatus.SUSPENDED: (("active", "Reactivate"), ("inactive", "Deactivate")),
    MerchantStatus.INACTIVE: (("active", "Reactivate"),),
}
# taking an account's money-moving away is explained, always
REASON_REQUIRED = frozenset({"suspended", "inactive"})


@view_defaults(route_name="admin", context=AdminRoot, permission=Permission.PUBLIC)
class OperatorSignIn:
    def __init__(self, context, request):
        self.context = context
        self.request = request

    @view_config(name="", request_method="GET", permission=Permission.ADMIN)
    def entry(self):
        return HTTPSeeOther(location=url(self.request, "admin", "merchants"))

    @view_config(name="login", request_method="GET", renderer="admin/login.jinja2")
    def login_form(self):
        if self.request.identity is not None:
            return HTTPSeeOther(location=url(self.request, "admin", "merchants"))
        return {"values": {}, "errors": {}}

    @view_config(name="login", request_method="POST", renderer="admin/login.jinja2")
    def login(self):
        values = form_values(self.request, "email", "password")
        try:
            body = validate(Login, values)
            operator = authenticate_operator(
                self.request.dbsession, self.request.app_settings, body.email, body.password
            )
        except FormInvalid as exc:
            return self._failed(422, values, exc.errors)
        except RateLimited as exc:
            self.request.response.headers["Retry-After"] = str(exc.retry_after)
            return self._failed(429, values, {GENERAL: "Too many failed attempts. Wait a while."})
        except PayportalError as exc:
            if not isinstance(exc, RecordedFailure):
                raise
            # answered without raising: the counted failure must commit for throttling to work
            return self._failed(exc.status, values, {GENERAL: "Email or password is incorrect."})
        response = HTTPSeeOther(location=url(self.request, "admin", "merchants"))
        sign_in(self.request, response, OPERATOR, operator.id)
        return response

    @view_config(name="logout", request_method="POST")
    def logout(self):
        response = HTTPSeeOther(location=url(self.request, "admin", "login"))
        sign_out(self.request, response, OPERATOR)
        return response

    def _failed(self, status: int, values: dict, errors: dict) -> dict:
        self.request.response.status_int = status
        return {"values": {"email": values["email"]}, "errors": errors}


@view_config(
    route_name="admin", context=AdminMerchantCollection, name="", request_method="GET",
    permission=Permission.ADMIN, renderer="admin/merchants.jinja2",
)  # fmt: skip
def merchants(context, request):
    status = request.GET.get("status", "")
    status = status if status in {s.value for s in MerchantStatus} else ""
    q = request.GET.get("q", "").strip()[:320]
    cursor = request.GET.get("cursor") or None
    rows, has_more, next_cursor = services.list_merchants(
        request.dbsession, status=status or None, q=q or None, limit=MERCHANTS_PAGE, cursor=cursor
    )
    since = period_start(utcnow(), VOLUME_DAYS)
    kept = {k: v for k, v in {"status": status, "q": q}.items() if v}
    base = url(request, "admin", "merchants")
    return {
        "section": "merchants",
        "merchants": rows,
        "volumes": settled_volumes(request.dbsession, [m.id for m in rows], since),
        "counts": services.count_by_status(request.dbsession),
        "statuses": [s.value for s in MerchantStatus],
        "status": status,
        "q": q,
        "next_url": f"{base}?{urlencode({**kept, 'cursor': next_cursor})}" if has_more else "",
        "first_url": url(request, "admin", "merchants", **kept) if cursor else "",
    }


@view_defaults(route_name="admin", context=AdminMerchant, permission=Permission.ADMIN)
class MerchantPages:
    def __init__(self, context, request):
        self.context = context
        self.request = request
        self.merchant = context.merchant

    @view_config(name="", request_method="GET", renderer="admin/merchant.jinja2")
    def show(self, values=None, errors=None):
        since = period_start(utcnow(), VOLUME_DAYS)
        totals = period_totals(self.request.dbsession, self.merchant.id, since, "day")
        return {
            "section": "merchants",
            "merchant": self.merchant,
            "totals": totals,
            "actions": STATUS_ACTIONS[MerchantStatus(self.merchant.status)],
            "audit": services.audit_trail(self.request.dbsession, self.merchant.id),
            "values": values or {},
            "errors": errors or {},
        }

    @view_config(name="status", request_method="POST", renderer="admin/merchant.jinja2")
    def change_status(self):
        values = form_values(self.request, "status", "reason")
        allowed = {
            target for target, _label in STATUS_ACTIONS[MerchantStatus(self.merchant.status)]
        }
        errors = {}
        if values["status"] not in allowed:
            errors["status"] = "That change is not possible from the merchant's current status."
        elif values["status"] in REASON_REQUIRED and not values["reason"]:
            errors["reason"] = "Say why: the merchant and the audit log will show it."
        elif len(values["reason"]) > 1000:
            errors["reason"] = "Keep the reason under 1,000 characters."
        if errors:
            self.request.response.status_int = 422
            return self.show(values, errors)
        change_merchant_status(
            self.request.dbsession,
            self.merchant,
            values["status"],
            actor=self.request.identity.actor,
            reason=values["reason"] or None,
            correlation_id=self.request.correlation_id,
        )
        return HTTPSeeOther(
            location=url(
                self.request, "admin", "merchants", self.merchant.id, notice="status_changed"
            )
        )


@view_config(
    route_name="admin", context=AdminMerchantPayments, name="", request_method="GET",
    permission=Permission.ADMIN, renderer="admin/payments.jinja2",
)  # fmt: skip
def merchant_payments(context, request):
    base = url(request, "admin", "merchants", context.merchant.id, "payments")
    return {
        "section": "merchants",
        "merchant": context.merchant,
        **payments_table(request, context.merchant.id, base),
    }


@view_config(
    route_name="admin", context=AdminPayment, name="", request_method="GET",
    permission=Permission.ADMIN, renderer="admin/payment.jinja2",
)  # fmt: skip
def merchant_payment(context, request):
    payment = context.payment
    timeline = payment_timeline(request.dbsession, payment)
    event_ids = [entry.event_id for entry in timeline if entry.kind == "event"]
    return {
        "section": "merchants",
        "merchant": context.__parent__.merchant,
        "payment": payment,
        "out": PaymentOut.from_payment(payment, request.app_settings.public_url),
        "timeline": timeline,
        "event_deliveries": deliveries_by_event(request.dbsession, payment.merchant_id, event_ids),
    }
