"""JSON views of /api/v1/webhooks: each gateway's signed endpoint, and the simulator.

Gateway endpoints carry no bearer credentials: the signature over the raw body is the
authentication, checked before the body is parsed.
"""

from __future__ import annotations

import logging

from pyramid.security import NO_PERMISSION_REQUIRED

from payportal.apiview import AUTH_NONE, api_view, read_json_body
from payportal.errors import ServiceUnavailable
from payportal.gateways import services
from payportal.gateways.flutterwave import FLUTTERWAVE
from payportal.gateways.generic import GENERIC
from payportal.gateways.models import WebhookOutcome
from payportal.gateways.paystack import PAYSTACK
from payportal.gateways.resources import SimulationResource, WebhookCollection
from payportal.gateways.schemas import SimulateGatewayOutcome, SimulationReceipt, WebhookReceipt
from payportal.gateways.stripe import STRIPE
from payportal.gateways.updates import GatewayScheme, mask_card_numbers_in_json
from payportal.metrics import GATEWAY_WEBHOOKS
from payportal.payments.schemas import PaymentOut
from payportal.security import Permission

log = logging.getLogger(__name__)

TAG = "Gateway webhooks"
# whatever the API-wide limit, a gateway event is never bigger than this
WEBHOOK_MAX_BYTES = 1024 * 1024
GATEWAY_ERRORS = (401, 503)


def receive(request, scheme: GatewayScheme) -> WebhookReceipt:
    raw = read_json_body(request, WEBHOOK_MAX_BYTES)
    secret = getattr(request.app_settings, scheme.setting)
    if not secret:
        raise ServiceUnavailable(
            f"{scheme.name} webhooks are not configured on this server: "
            f"set {scheme.variable} to accept them",
            code="gateway_not_configured",
        )
    scheme.verify(secret, request.headers, raw)
    raw = mask_card_numbers_in_json(raw)
    update = scheme.parse(raw)
    outcome = services.receive_gateway_webhook(
        request.dbsession,
        request.app_settings,
        update,
        raw,
        correlation_id=request.correlation_id,
    )
    # what came in and what it did; never the body, which can carry customer details
    log.info(
        "%s webhook %s (%s) for %s: %s",
        scheme.name,
        update.event_id,
        update.event_type,
        update.reference,
        outcome.value,
        extra={"gateway": scheme.name, "webhook_outcome": outcome.value},
    )
    GATEWAY_WEBHOOKS.labels(scheme.name, outcome.value).inc()
    if outcome is WebhookOutcome.MISMATCH:
        outcome = WebhookOutcome.IGNORED
    return WebhookReceipt(outcome=outcome.value)


@api_view(
    context=WebhookCollection,
    name=GENERIC.endpoint,
    method="POST",
    permission=NO_PERMISSION_REQUIRED,
    response=WebhookReceipt,
    auth=AUTH_NONE,
    raw_body=True,
    signature_header=GENERIC.signature_header,
    errors=GATEWAY_ERRORS,
    tag=TAG,
    request_example={
        "event_id": "evt_0001",
        "event": "payment.completed",
        "reference": "pay_3kTq9v0bWw2mXy7LrN1aZpQe",
        "status": "completed",
        "gateway_reference": "gw_123",
        "data": {"amount": 1050, "currency": "USD", "fee": 30},
    },
    summary="Receive a generic signed gateway event",
)
def generic_webhook_view(context, request):
    """Headers `X-Timestamp: <unix seconds>` and `X-Signature: sha256=<hex HMAC-SHA256 of
    "<timestamp>.<raw body>" with WEBHOOK_SECRET>`, within 300 s of the server's clock.
    Body `{event_id, event, reference, status, gateway_reference?, failure_code?,
    failure_message?, data?: {amount?, currency?, fee?, refund_amount?, refund_id?}}` where
    `status` is processing, completed, failed, cancelled, refunded, partially_refunded or
    disputed. A bad or missing signature or a stale timestamp: 401, nothing stored."""
    return receive(request, GENERIC)


@api_view(
    context=WebhookCollection,
    name=STRIPE.endpoint,
    method="POST",
    permission=NO_PERMISSION_REQUIRED,
    response=WebhookReceipt,
    auth=AUTH_NONE,
    raw_body=True,
    signature_header=STRIPE.signature_header,
    errors=GATEWAY_ERRORS,
    tag=TAG,
    request_example={
        "id": "evt_1NqZ2a",
        "type": "payment_intent.succeeded",
        "data": {
            "object": {
                "id": "pi_3NqZ2a",
                "amount": 1050,
                "currency": "usd",
                "metadata": {"reference": "pay_3kTq9v0bWw2mXy7LrN1aZpQe"},
            }
        },
    },
    summary="Receive a Stripe event",
)
def stripe_webhook_view(context, request):
    """`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` signed with
    STRIPE_WEBHOOK_SECRET (any v1 may match; 300 s tolerance). Acts on
    payment_intent.succeeded, payment_intent.payment_failed, payment_intent.processing,
    payment_intent.canceled, charge.refunded and charge.dispute.created; the payment is the one
    whose reference is in `data.object.metadata.reference`."""
    return receive(request, STRIPE)


@api_view(
    context=WebhookCollection,
    name=PAYSTACK.endpoint,
    method="POST",
    permission=NO_PERMISSION_REQUIRED,
    response=WebhookReceipt,
    auth=AUTH_NONE,
    raw_body=True,
    signature_header=PAYSTACK.signature_header,
    errors=GATEWAY_ERRORS,
    tag=TAG,
    request_example={
        "event": "charge.success",
        "data": {
            "id": 302961,
            "reference": "pay_3kTq9v0bWw2mXy7LrN1aZpQe",
            "amount": 1050,
            "currency": "NGN",
            "status": "success",
        },
    },
    summary="Receive a Paystack event",
)
def paystack_webhook_view(context, request):
    """`x-paystack-signature`: hex HMAC-SHA512 of the raw body with PAYSTACK_SECRET_KEY.
    Acts on charge.success, charge.failed, refund.processed and charge.dispute.create; the
    payment is `data.reference` (refunds: `data.transaction_reference`)."""
    return receive(request, PAYSTACK)


@api_view(
    context=WebhookCollection,
    name=FLUTTERWAVE.endpoint,
    method="POST",
    permission=NO_PERMISSION_REQUIRED,
    response=WebhookReceipt,
    auth=AUTH_NONE,
    raw_body=True,
    signature_header=FLUTTERWAVE.signature_header,
    errors=GATEWAY_ERRORS,
    tag=TAG,
    request_example={
        "event": "charge.completed",
        "data": {
            "id": 285959875,
            "tx_ref": "pay_3kTq9v0bWw2mXy7LrN1aZpQe",
            "amount": 1050,
            "currency": "NGN",
            "status": "successful",
        },
    },
    summary="Receive a Flutterwave event",
)
def flutterwave_webhook_view(context, request):
    """`verif-hash` equal to FLUTTERWAVE_SECRET_HASH (v3), or `flutterwave-signature`: base64
    HMAC-SHA256 of the raw body with it. Acts on charge.completed with `data.status`
    successful or failed; the payment is `data.tx_ref` (v3) or `data.reference` (v4)."""
    return receive(request, FLUTTERWAVE)


@api_view(
    context=SimulationResource,
    method="POST",
    body=SimulateGatewayOutcome,
    response=SimulationReceipt,
    permission=Permission.SIMULATE,
    moves_money=True,
    errors=(404, 409),
    tag=TAG,
    summary="Simulate a gateway outcome for one of your payments",
    request_example={"reference": "pay_3kTq9v0bWw2mXy7LrN1aZpQe", "status": "completed"},
)
def simulate_view(context, request, body: SimulateGatewayOutcome):
    """Test mode only (PAYPORTAL_ALLOW_SIMULATION; off in production, where this path is 404).
    Moves the payment exactly as a gateway's webhook would (source `webhook:simulation`); an
    outcome the payment cannot take now is 409 `invalid_transition`. Another merchant's
    payment is 404."""
    payment = services.simulate_gateway_outcome(
        request.dbsession,
        request.app_settings,
        merchant_id=context.merchant_id,
        reference=body.reference,
        status=body.status,
        gateway_reference=body.gateway_reference,
        failure_reason=body.failure_reason,
        actor=request.identity.actor,
        correlation_id=request.correlation_id,
    )
    return SimulationReceipt(
        outcome="processed",
        payment=PaymentOut.from_payment(payment, request.app_settings.public_url),
    )
