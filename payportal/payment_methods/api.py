"""JSON views of payment methods: thin, each parses, calls one service, renders."""

from __future__ import annotations

from payportal.apiview import api_view
from payportal.payment_methods import services
from payportal.payment_methods.resources import PaymentMethodCollection, PaymentMethodResource
from payportal.payment_methods.schemas import (
    CreatePaymentMethod,
    PaymentMethodList,
    PaymentMethodListQuery,
    PaymentMethodOut,
    UpdatePaymentMethod,
)
from payportal.security import Permission

TAG = "Payment methods"
CARD_EXAMPLE = {
    "name": "Company Visa",
    "type": "card",
    "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030},
    "metadata": {"cost_center": "ops"},
}


@api_view(
    context=PaymentMethodCollection,
    method="POST",
    body=CreatePaymentMethod,
    response=PaymentMethodOut,
    status=201,
    permission=Permission.METHODS_WRITE,
    tag=TAG,
    summary="Add a payment method",
    request_example=CARD_EXAMPLE,
)
def create_payment_method_view(context, request, body: CreatePaymentMethod):
    """Each type needs its own details: `card` for card, `bank_account` for bank_account,
    `mobile_money` for mobile_money, `external_id` + `external_provider` for crypto, paypal and
    stripe. Card numbers must pass Luhn; an expired card is refused (422 `card_expired`).
    Card, account and phone numbers are stored only encrypted and never returned; a CVV or any
    unknown field is refused (422)."""
    method = services.create_payment_method(
        request.dbsession,
        request.registry.keyring,
        context.merchant_id,
        body,
        actor=request.identity.actor,
        correlation_id=request.correlation_id,
    )
    return PaymentMethodOut.from_method(method)


@api_view(
    context=PaymentMethodCollection,
    method="GET",
    query=PaymentMethodListQuery,
    response=PaymentMethodList,
    permission=Permission.METHODS_READ,
    tag=TAG,
    summary="List payment methods",
)
def list_payment_methods_view(context, request, query: PaymentMethodListQuery):
    """Newest first, paged by cursor; deleted methods never appear."""
    methods, has_more, next_cursor = services.list_payment_methods(
        request.dbsession,
        context.merchant_id,
        method_type=query.type,
        status=query.status,
        limit=query.limit,
        cursor=query.cursor,
    )
    return PaymentMethodList(
        data=[PaymentMethodOut.from_method(m) for m in methods],
        has_more=has_more,
        next_cursor=next_cursor,
    )


@api_view(
    context=PaymentMethodResource,
    method="GET",
    response=PaymentMethodOut,
    permission=Permission.METHODS_READ,
    tag=TAG,
    summary="Get a payment method",
)
def get_payment_method_view(context, request):
    """Display fields only (brand, last4, bank name, provider): never a number. Another
    merchant's id, or a deleted method, is 404."""
    return PaymentMethodOut.from_method(context.obj)


@api_view(
    context=PaymentMethodResource,
    method="PUT",
    body=UpdatePaymentMethod,
    response=PaymentMethodOut,
    permission=Permission.METHODS_WRITE,
    tag=TAG,
    summary="Update a payment method",
    errors=(409,),
)
def update_payment_method_view(context, request, body: UpdatePaymentMethod):
    """Only the fields given change; `metadata` replaces the whole object. `is_default: true`
    makes this the merchant's only default (it must be active)."""
    method = services.update_payment_method(
        request.dbsession,
        context.obj.merchant_id,
        context.obj.id,
        body,
        actor=request.identity.actor,
        correlation_id=request.correlation_id,
    )
    return PaymentMethodOut.from_method(method)


@api_view(
    context=PaymentMethodResource,
    method="DELETE",
    status=204,
    permission=Permission.METHODS_WRITE,
    tag=TAG,
    summary="Delete a payment method",
)
def delete_payment_method_view(context, request):
    """Soft delete: gone from every list and get; payments that used it keep their reference."""
    services.delete_payment_method(
        request.dbsession, context.obj.merchant_id, context.obj.id, actor=request.identity.actor
    )


@api_view(
    context=PaymentMethodResource,
    name="default",
    method="PUT",
    response=PaymentMethodOut,
    permission=Permission.METHODS_WRITE,
    tag=TAG,
    summary="Make a payment method the default",
    errors=(409,),
)
def make_default_view(context, request):
    """The previous default is unset in the same transaction: a merchant has one default."""
    method = services.make_default(
        request.dbsession,
        context.obj.merchant_id,
        context.obj.id,
        actor=request.identity.actor,
        correlation_id=request.correlation_id,
    )
    return PaymentMethodOut.from_method(method)
