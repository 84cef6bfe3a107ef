"""The dashboard's payment-method pages: the list, an add form per type, edit, make default and
delete after a confirmation. Every change goes through the payment-methods services."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config, view_defaults

from payportal.errors import PayportalError
from payportal.payment_methods import services
from payportal.payment_methods.models import PaymentMethodType
from payportal.payment_methods.resources import PaymentMethodCollection, PaymentMethodResource
from payportal.payment_methods.schemas import (
    CreatePaymentMethod,
    PaymentMethodOut,
    UpdatePaymentMethod,
)
from payportal.portal.forms import (
    FormInvalid,
    errors_from_domain,
    form_values,
    metadata_lines,
    optional,
    validate,
    whole_number,
)
from payportal.portal.templating import url
from payportal.security import Permission

T = PaymentMethodType
METHODS_PAGE = 100
# the form's inputs for each type, beyond the name (nested API objects are shown flat)
TYPE_FIELDS: dict[PaymentMethodType, tuple[str, ...]] = {
    T.CARD: ("number", "exp_month", "exp_year", "holder_name"),
    T.BANK_ACCOUNT: ("bank_name", "account_number", "account_holder_name"),
    T.MOBILE_MONEY: ("provider", "phone_number"),
    T.CRYPTO: ("external_provider", "external_id"),
    T.PAYPAL: ("external_provider", "external_id"),
    T.STRIPE: ("external_provider", "external_id"),
}
NESTED = ("card", "bank_account", "mobile_money")
# inputs whose values never go back into a page (they are sealed at rest)
SENSITIVE = ("number", "account_number", "phone_number")
SETTABLE_STATUSES = ("active", "inactive", "blocked")


def create_body(method_type: PaymentMethodType, values: dict, is_default: bool) -> dict:
    """The API's create request from the flat form of one type."""
    body: dict = {"name": values["name"], "type": method_type.value}
    if is_default:
        body["is_default"] = True
    if method_type is T.CARD:
        body["card"] = {
            "number": values["number"],
            "exp_month": whole_number("exp_month", values["exp_month"]),
            "exp_year": whole_number("exp_year", values["exp_year"]),
            **optional(values, "holder_name"),
        }
    elif method_type is T.BANK_ACCOUNT:
        body["bank_account"] = optional(
            values, "bank_name", "account_number", "account_holder_name"
        )
    elif method_type is T.MOBILE_MONEY:
        body["mobile_money"] = optional(values, "provider", "phone_number")
    else:
        body.update(optional(values, "external_provider", "external_id"))
    return body


@view_defaults(route_name="portal", context=PaymentMethodCollection)
class PaymentMethodListPages:
    def __init__(self, context, request):
        self.context = context
        self.request = request

    @view_config(
        name="", request_method="GET", permission=Permission.METHODS_READ,
        renderer="payment_methods/list.jinja2",
    )  # fmt: skip
    def table(self):
        methods, _more, _cursor = services.list_payment_methods(
            self.request.dbsession,
            self.context.merchant_id,
            method_type=None,
            status=None,
            limit=METHODS_PAGE,
            cursor=None,
        )
        return {
            "section": "methods",
            "methods": [PaymentMethodOut.from_method(m) for m in methods],
            "types": [t.value for t in T],
        }

    @view_config(
        name="new", request_method="GET", permission=Permission.METHODS_WRITE,
        renderer="payment_methods/new.jinja2",
    )  # fmt: skip
    def new_form(self):
        return self._form(self._type(), {}, {})

    @view_config(
        name="new", request_method="POST", permission=Permission.METHODS_WRITE,
        renderer="payment_methods/new.jinja2",
    )  # fmt: skip
    def create(self):
        method_type = self._type()
        values = form_values(self.request, "name", *TYPE_FIELDS[method_type])
        is_default = self.request.POST.get("is_default") == "on"
        try:
            body = validate(
                CreatePaymentMethod, create_body(method_type, values, is_default), NESTED
            )
            services.create_payment_method(
                self.request.dbsession,
                self.request.registry.keyring,
                self.context.merchant_id,
                body,
                actor=self.request.identity.actor,
                correlation_id=self.request.correlation_id,
            )
        except FormInvalid as exc:
            self.request.response.status_int = 422
            return self._form(method_type, values, exc.errors, is_default)
        except PayportalError as exc:
            self.request.response.status_int = exc.status
            return self._form(method_type, values, errors_from_domain(exc, NESTED), is_default)
        return HTTPSeeOther(
            location=url(self.request, "portal", "payment-methods", notice="method_saved")
        )

    def _type(self) -> PaymentMethodType:
        chosen = self.request.params.get("type", T.CARD.value)
        return T(chosen) if chosen in {t.value for t in T} else T.CARD

    def _form(self, method_type, values: dict, errors: dict, is_default: bool = False) -> dict:
        kept = {k: v for k, v in values.items() if k not in SENSITIVE}
        return {
            "section": "methods",
            "method_type": method_type.value,
            "types": [t.value for t in T],
            "values": kept,
            "errors": errors,
            "is_default": is_default,
        }


@view_defaults(route_name="portal", context=PaymentMethodResource)
class PaymentMethodPages:
    def __init__(self, context, request):
        self.context = context
        self.request = request
        self.method = context.obj

    @view_config(
        name="", request_method="GET", permission=Permission.METHODS_READ,
        renderer="payment_methods/edit.jinja2",
    )  # fmt: skip
    def show(self, values: dict | None = None, errors: dict | None = None):
        out = PaymentMethodOut.from_method(self.method)
        if values is None:
            values = {
                "name": out.name,
                "status": out.status.value,
                "metadata": "\n".join(f"{k}={v}" for k, v in out.metadata.items()),
            }
        return {
            "section": "methods",
            "method": out,
            "values": values,
            "errors": errors or {},
            "statuses": SETTABLE_STATUSES,
        }

    @view_config(
        name="", request_method="POST", permission=Permission.METHODS_WRITE,
        renderer="payment_methods/edit.jinja2",
    )  # fmt: skip
    def save(self):
        values = form_values(self.request, "name", "status", "metadata")
        try:
            data = {
                "name": values["name"],
                "metadata": metadata_lines("metadata", values["metadata"]),
            }
            if values["status"] != PaymentMethodOut.from_method(self.method).status.value:
                data["status"] = values["status"]
            changes = validate(UpdatePaymentMethod, data)
            services.update_payment_method(
                self.request.dbsession,
                self.method.merchant_id,
                self.method.id,
                changes,
                actor=self.request.identity.actor,
                correlation_id=self.request.correlation_id,
            )
        except FormInvalid as exc:
            self.request.response.status_int = 422
            return self.show(values, exc.errors)
        except PayportalError as exc:
            self.request.response.status_int = exc.status
            self.request.tm.doom()
            self.request.dbsession.refresh(self.method)
            return self.show(values, errors_from_domain(exc))
        return self._back("method_saved")

    @view_config(name="default", request_method="POST", permission=Permission.METHODS_WRITE)
    def make_default(self):
        services.make_default(
            self.request.dbsession,
            self.method.merchant_id,
            self.method.id,
            actor=self.request.identity.actor,
            correlation_id=self.request.correlation_id,
        )
        return self._back("method_default")

    @view_config(
        name="delete", request_method="GET", permission=Permission.METHODS_WRITE,
        renderer="payment_methods/delete.jinja2",
    )  # fmt: skip
    def confirm_delete(self):
        return {"section": "methods", "method": PaymentMethodOut.from_method(self.method)}

    @view_config(name="delete", request_method="POST", permission=Permission.METHODS_WRITE)
    def delete(self):
        services.delete_payment_method(
            self.request.dbsession,
            self.method.merchant_id,
            self.method.id,
            actor=self.request.identity.actor,
        )
        return self._back("method_deleted")

    def _back(self, notice: str):
        return HTTPSeeOther(location=url(self.request, "portal", "payment-methods", notice=notice))
