"""The dashboard's payment pages: the filtered table, CSV export, one payment with its timeline,
refund / cancel / simulate, and a form to initialize a payment. Every change goes through the
payments services the API uses."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.view import view_config, view_defaults

from payportal.errors import MerchantInactive, PayportalError, ValidationFailed
from payportal.gateways.services import simulate_gateway_outcome
from payportal.merchants.models import Merchant
from payportal.money import SUPPORTED_CURRENCIES
from payportal.payments import services
from payportal.payments.models import PaymentStatus
from payportal.payments.resources import PaymentCollection, PaymentResource
from payportal.payments.schemas import InitializePayment, PaymentOut
from payportal.payments.state import can_transition
from payportal.portal.deliveries import deliveries_by_event
from payportal.portal.export import export_filename, stream_payments_csv
from payportal.portal.forms import (
    FormInvalid,
    errors_from_domain,
    form_values,
    minor_amount,
    optional,
    validate,
)
from payportal.portal.payment_filters import list_query, payments_table
from payportal.portal.templating import url
from payportal.security import Permission

SOURCE = "dashboard"
CANCELLABLE = frozenset({PaymentStatus.PENDING})
SIMULATABLE = frozenset({PaymentStatus.PENDING, PaymentStatus.PROCESSING})
# the dashboard offers the two outcomes a customer's payment attempt can have
SIMULATED_OUTCOMES = frozenset({"completed", "failed"})
REFUNDABLE = services.REFUNDABLE


def require_active(request) -> None:
    """The dashboard keeps the API's rule: only an active merchant moves money."""
    status = request.identity.merchant_status
    if status != "active":
        raise MerchantInactive(status or "unknown")


@view_defaults(route_name="portal", context=PaymentCollection)
class PaymentCollectionPages:
    def __init__(self, context, request):
        self.context = context
        self.request = request

    @view_config(
        name="", request_method="GET", permission=Permission.PAYMENTS_READ,
        renderer="payments/list.jinja2",
    )  # fmt: skip
    def table(self):
        return {
            "section": "payments",
            **payments_table(
                self.request, self.context.merchant_id, url(self.request, "portal", "payments")
            ),
        }

    @view_config(name="export.csv", request_method="GET", permission=Permission.PAYMENTS_READ)
    def export(self):
        query, _values, errors = list_query(self.request)
        if errors:
            raise ValidationFailed("the filters are not valid: " + "; ".join(errors.values()))
        return stream_payments_csv(
            self.request,
            services.payment_list_statement(self.context.merchant_id, query),
            filename=export_filename(),
        )

    @view_config(
        name="new", request_method="GET", permission=Permission.PAYMENTS_WRITE,
        renderer="payments/new.jinja2",
    )  # fmt: skip
    def new_form(self):
        return self._form({"currency": self._default_currency()}, {})

    @view_config(
        name="new", request_method="POST", permission=Permission.PAYMENTS_WRITE,
        renderer="payments/new.jinja2",
    )  # fmt: skip
    def create(self):
        require_active(self.request)
        values = form_values(
            self.request, "amount", "currency", "description", "customer_email", "customer_name"
        )
        try:
            currency = values["currency"] if values["currency"] in SUPPORTED_CURRENCIES else ""
            if not currency:
                raise FormInvalid({"currency": "Choose a currency."})
            data = optional(values, "description", "customer_email", "customer_name")
            data.update(
                currency=currency, amount=minor_amount("amount", values["amount"], currency)
            )
            body = validate(InitializePayment, data)
            payment = services.initialize_payment(
                self.request.dbsession,
                self.request.app_settings,
                self.context.merchant_id,
                body,
                actor=self.request.identity.actor,
                correlation_id=self.request.correlation_id,
                source=SOURCE,
            )
        except FormInvalid as exc:
            self.request.response.status_int = 422
            return self._form(values, exc.errors)
        except PayportalError as exc:
            self.request.response.status_int = exc.status
            return self._form(values, errors_from_domain(exc))
        return HTTPSeeOther(
            location=f"{self.request.application_url}/dashboard/payments/"
            f"{payment.reference}?notice=payment_created"
        )

    def _default_currency(self) -> str:
        merchant = self.request.dbsession.get(Merchant, self.context.merchant_id)
        return merchant.default_currency

    def _form(self, values: dict, errors: dict) -> dict:
        return {
            "section": "payments",
            "values": values,
            "errors": errors,
            "currencies": SUPPORTED_CURRENCIES,
        }


@view_defaults(route_name="portal", context=PaymentResource)
class PaymentPages:
    def __init__(self, context, request):
        self.context = context
        self.request = request
        self.payment = context.obj

    @view_config(
        name="", request_method="GET", permission=Permission.PAYMENTS_READ,
        renderer="payments/detail.jinja2",
    )  # fmt: skip
    def detail(self, refund_values: dict | None = None, refund_errors: dict | None = None):
        payment = self.payment
        status = PaymentStatus(payment.status)
        settings = self.request.app_settings
        timeline = services.payment_timeline(self.request.dbsession, payment)
        event_ids = [entry.event_id for entry in timeline if entry.kind == "event"]
        return {
            "section": "payments",
            "payment": payment,
            "out": PaymentOut.from_payment(payment, settings.public_url),
            "timeline": timeline,
            "event_deliveries": deliveries_by_event(
                self.request.dbsession, payment.merchant_id, event_ids
            ),
            "refundable": status in REFUNDABLE,
            "left_to_refund": payment.amount - payment.amount_refunded,
            "cancellable": status in CANCELLABLE
            and can_transition(status, PaymentStatus.CANCELLED),
            "simulatable": settings.allow_simulation and status in SIMULATABLE,
            "can_move_money": self.request.identity.merchant_status == "active",
            "refund_values": refund_values or {"kind": "full"},
            "refund_errors": refund_errors or {},
        }

    @view_config(
        name="refund", request_method="POST", permission=Permission.REFUNDS_CREATE,
        renderer="payments/detail.jinja2",
    )  # fmt: skip
    def refund(self):
        require_active(self.request)
        values = form_values(self.request, "kind", "amount", "reason")
        try:
            amount = None
            if values["kind"] == "partial":
                amount = minor_amount("amount", values["amount"], self.payment.currency)
            elif values["kind"] != "full":
                raise FormInvalid({"kind": "Choose a full or a partial refund."})
            if len(values["reason"]) > 1000:
                raise FormInvalid({"reason": "Keep the reason under 1,000 characters."})
            services.create_refund(
                self.request.dbsession,
                self.request.app_settings,
                self.payment.merchant_id,
                self.payment.reference,
                amount=amount,
                reason=values["reason"] or None,
                source=SOURCE,
                actor=self.request.identity.actor,
                correlation_id=self.request.correlation_id,
            )
        except FormInvalid as exc:
            return self._refund_failed(422, values, exc.errors)
        except PayportalError as exc:
            return self._refund_failed(exc.status, values, errors_from_domain(exc))
        return self._back("refunded")

    @view_config(name="cancel", request_method="POST", permission=Permission.PAYMENTS_WRITE)
    def cancel(self):
        require_active(self.request)
        services.change_status(
            self.request.dbsession,
            self.request.app_settings,
            self.payment.merchant_id,
            self.payment.reference,
            status=PaymentStatus.CANCELLED,
            source=SOURCE,
            actor=self.request.identity.actor,
            correlation_id=self.request.correlation_id,
        )
        return self._back("cancelled")

    @view_config(name="simulate", request_method="POST", permission=Permission.SIMULATE)
    def simulate(self):
        if not self.request.app_settings.allow_simulation:
            raise HTTPNotFound()
        require_active(self.request)
        outcome = self.request.POST.get("outcome", "")
        if outcome not in SIMULATED_OUTCOMES:
            raise ValidationFailed("outcome must be completed or failed")
        simulate_gateway_outcome(
            self.request.dbsession,
            self.request.app_settings,
            merchant_id=self.payment.merchant_id,
            reference=self.payment.reference,
            status=outcome,
            actor=self.request.identity.actor,
            correlation_id=self.request.correlation_id,
        )
        return self._back("simulated")

    def _refund_failed(self, status: int, values: dict, errors: dict):
        # the refund may have failed half-way through the service: nothing of it may commit
        self.request.tm.doom()
        self.request.response.status_int = status
        # the row may have been touched by the failed attempt: show it as stored
        self.request.dbsession.refresh(self.payment)
        return self.detail(refund_values=values, refund_errors=errors)

    def _back(self, notice: str):
        return HTTPSeeOther(
            location=f"{self.request.application_url}/dashboard/payments/"
            f"{self.payment.reference}?notice={notice}"
        )
