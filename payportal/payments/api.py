"""The payments JSON API: initialize, read, list, change status, refund, timeline, statistics."""

from __future__ import annotations

from payportal.apiview import api_view
from payportal.payments import services
from payportal.payments.resources import PaymentCollection, PaymentResource, PaymentStatistics
from payportal.payments.schemas import (
    ChangeStatus,
    CreateRefund,
    InitializePayment,
    PaymentEnvelope,
    PaymentList,
    PaymentListQuery,
    PaymentOut,
    PaymentTimeline,
    RefundCreated,
    RefundOut,
    StatisticsQuery,
    StatisticsSummary,
)
from payportal.payments.statistics import payment_summary
from payportal.security import Permission

TAG = "Payments"
SOURCE = "api"


def _envelope(request, payment) -> PaymentEnvelope:
    return PaymentEnvelope(
        payment=PaymentOut.from_payment(payment, request.app_settings.public_url)
    )


@api_view(
    context=PaymentCollection,
    name="initialize",
    method="POST",
    body=InitializePayment,
    response=PaymentEnvelope,
    status=201,
    permission=Permission.PAYMENTS_WRITE,
    moves_money=True,
    tag=TAG,
    summary="Initialize a payment",
    request_example={
        "amount": 1050,
        "currency": "USD",
        "customer_email": "ada@example.com",
        "description": "Order 1234",
    },
    response_example={
        "payment": {
            "id": "5f0c7d2e-8a61-4b6f-9a53-2d3f4c5b6a71",
            "reference": "pay_3kTq9v0bWw2mXy7LrN1aZpQe",
            "amount": 1050,
            "amount_refunded": 0,
            "currency": "USD",
            "status": "pending",
            "gateway": "internal",
            "gateway_reference": None,
            "description": "Order 1234",
            "customer_email": "ada@example.com",
            "customer_name": None,
            "customer_phone": None,
            "metadata": {},
            "payment_method_id": None,
            "failure_code": None,
            "failure_reason": None,
            "fee": 60,
            "net_amount": None,
            "checkout_url": "https://payportal.example.com/checkout/pay_3kTq9v0bWw2mXy7LrN1aZpQe",
            "expires_at": "2025-05-01T12:30:00Z",
            "completed_at": None,
            "created_at": "2025-05-01T12:00:00Z",
            "updated_at": "2025-05-01T12:00:00Z",
        }
    },
)
def initialize_payment_view(context, request, body: InitializePayment):
    """A pending payment with its checkout_url; it expires after the configured TTL."""
    payment = services.initialize_payment(
        request.dbsession,
        request.app_settings,
        context.merchant_id,
        body,
        actor=request.identity.actor,
        correlation_id=request.correlation_id,
        source=SOURCE,
    )
    return PaymentEnvelope(payment=payment)


@api_view(
    context=PaymentCollection,
    method="GET",
    query=PaymentListQuery,
    response=PaymentList,
    permission=Permission.PAYMENTS_READ,
    tag=TAG,
    summary="List payments",
)
def list_payments_view(context, request, query: PaymentListQuery):
    """Newest first, filtered, one keyset page at a time."""
    payments, has_more, next_cursor = services.list_payments(
        request.dbsession, context.merchant_id, query
    )
    public_url = request.app_settings.public_url
    return PaymentList(
        data=[PaymentOut.from_row(p, public_url) for p in payments],
        has_more=has_more,
        next_cursor=next_cursor,
    )


@api_view(
    context=PaymentResource,
    method="GET",
    response=PaymentEnvelope,
    permission=Permission.PAYMENTS_READ,
    tag=TAG,
    summary="Get a payment",
)
def get_payment_view(context, request):
    """The payment as it is now; its timeline (`events`) tells how it got here.
    Another merchant's reference is 404."""
    return PaymentEnvelope(
        payment=PaymentOut.from_row(context.row, request.app_settings.public_url)
    )


@api_view(
    context=PaymentResource,
    name="status",
    method="PUT",
    body=ChangeStatus,
    response=PaymentEnvelope,
    permission=Permission.PAYMENTS_WRITE,
    moves_money=True,
    errors=(409,),
    tag=TAG,
    summary="Change a payment's status",
)
def change_status_view(context, request, body: ChangeStatus):
    """Through the state machine: a move it does not allow answers 409 invalid_transition."""
    payment = services.change_status(
        request.dbsession,
        request.app_settings,
        context.obj.merchant_id,
        context.obj.reference,
        status=body.status,
        gateway_reference=body.gateway_reference,
        failure_code=body.failure_code,
        failure_reason=body.failure_reason,
        source=SOURCE,
        actor=request.identity.actor,
        correlation_id=request.correlation_id,
    )
    return _envelope(request, payment)


@api_view(
    context=PaymentResource,
    name="refunds",
    method="POST",
    body=CreateRefund,
    response=RefundCreated,
    status=201,
    permission=Permission.REFUNDS_CREATE,
    moves_money=True,
    errors=(409,),
    tag=TAG,
    summary="Refund a payment",
)
def create_refund_view(context, request, body: CreateRefund):
    """All that is left by default; never more than the payment's amount in total."""
    refund, payment = services.create_refund(
        request.dbsession,
        request.app_settings,
        context.obj.merchant_id,
        context.obj.reference,
        amount=body.amount,
        reason=body.reason,
        source=SOURCE,
        actor=request.identity.actor,
        correlation_id=request.correlation_id,
    )
    return RefundCreated(
        refund=RefundOut.from_refund(refund),
        payment=PaymentOut.from_payment(payment, request.app_settings.public_url),
    )


@api_view(
    context=PaymentResource,
    name="events",
    method="GET",
    response=PaymentTimeline,
    permission=Permission.PAYMENTS_READ,
    tag=TAG,
    summary="A payment's timeline",
)
def payment_timeline_view(context, request):
    """Transitions, refunds, gateway webhooks received and events, oldest first."""
    return PaymentTimeline(
        reference=context.obj.reference,
        data=services.payment_timeline(request.dbsession, context.obj),
    )


@api_view(
    context=PaymentStatistics,
    name="summary",
    method="GET",
    query=StatisticsQuery,
    response=StatisticsSummary,
    permission=Permission.PAYMENTS_READ,
    tag=TAG,
    summary="Payment statistics",
)
def statistics_summary_view(context, request, query: StatisticsQuery):
    """Counts and sums by status and currency for payments created in [from, to)."""
    return payment_summary(
        request.dbsession,
        context.merchant_id,
        created_from=query.from_,
        created_to=query.to,
        currency=query.currency,
    )
