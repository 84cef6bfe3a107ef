"""What a gateway event means for a payment, in one shape every gateway's parser produces."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from payportal.errors import InvalidRequest
from payportal.money import MoneyError, is_supported, precision, to_minor
from payportal.payment_methods.cards import mask_card_numbers

# the action a refund event asks for; every other action is a payment status
REFUND = "refund"

EVENT_ID_MAX = 255
EVENT_TYPE_MAX = 100
REFERENCE_MAX = 100


# a JSON string token, escapes included
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def mask_card_numbers_in_json(raw: bytes) -> bytes:
    """The event with every card number inside its strings masked to its last four digits, so
    a gateway that sends one (in a description, a note, a card object) never gets it stored,
    applied or logged. Numbers outside strings are amounts and ids, left exact."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw  # the parser refuses it as malformed
    masked = _JSON_STRING.sub(lambda string: mask_card_numbers(string.group()), text)
    return raw if masked == text else masked.encode("utf-8")


class MalformedEvent(InvalidRequest):
    """A verified body that is not an event this gateway could have sent (400)."""

    code = "malformed_event"


@dataclass(frozen=True)
class GatewayUpdate:
    """One gateway event, normalised: which payment, what should happen, and the facts to check.

    `action` is a payment status ("completed", "failed", ...), REFUND, or None for an event type
    payportal does not act on. Amounts are integers in the currency's minor unit.
    """

    gateway: str
    event_id: str
    event_type: str
    reference: str | None
    action: str | None
    amount: int | None = None
    currency: str | None = None
    gateway_reference: str | None = None
    failure_code: str | None = None
    failure_reason: str | None = None
    gateway_fee: int | None = None
    refund_amount: int | None = None
    # Stripe reports the total refunded so far; Paystack and the generic format one refund
    refund_is_cumulative: bool = False
    refund_id: str | None = None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def load_event_document(raw: bytes | str) -> dict[str, Any]:
    """Parse a verified body: a JSON object, decimals kept exact (never floats), no NaN."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        document = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedEvent("webhook body is not valid JSON") from None
    if not isinstance(document, dict):
        raise MalformedEvent("webhook body must be a JSON object")
    # JSON text can only carry U+0000 escaped (a raw control character is refused above), so
    # a body without the escape needs no walk through the document
    if "\\u0000" in text and _contains_nul(document):
        # PostgreSQL's jsonb cannot store U+0000, and no gateway sends it
        raise MalformedEvent("webhook body contains a NUL character")
    return document


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


def dig(document: Any, *path: str) -> Any:
    """document[a][b][c], or None as soon as a step is missing or not an object."""
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def text_field(value: Any, limit: int) -> str | None:
    """A gateway's string or number as text, clipped to what its column holds."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | Decimal | str):
        text = str(value).strip()
        return text[:limit] or None
    return None


def required_text(value: Any, name: str, limit: int) -> str:
    """An identifier the event cannot do without (event id, event type)."""
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise MalformedEvent(f"{name} is missing")
    text = str(value).strip()
    if len(text) > limit:
        raise MalformedEvent(f"{name} is longer than {limit} characters")
    return text


def reference_field(value: Any) -> str | None:
    """Our payment reference as the event carries it; anything unusable is an unknown one."""
    if isinstance(value, str) and 0 < len(value.strip()) <= REFERENCE_MAX:
        return value.strip()
    return None


def currency_field(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip().upper()
    return None


def minor_amount(value: Any, name: str) -> int | None:
    """An amount already in minor units (Stripe, Paystack): an integer, or digits as a string."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, Decimal) and value >= 0 and value == value.to_integral_value():
        return int(value)
    raise MalformedEvent(f"{name} is not an amount in minor units")


def major_amount(value: Any, currency: str | None, name: str) -> int | None:
    """An amount in major units (Flutterwave's 10.5 NGN) converted exactly to minor units."""
    if value is None:
        return None
    if currency is None:
        raise MalformedEvent(f"{name} comes without a currency")
    if not is_supported(currency):
        # no payment is in this currency: the currency check reports the mismatch
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise MalformedEvent(f"{name} is not a number")
    try:
        return to_minor(value, currency)
    except MoneyError as exc:
        raise MalformedEvent(f"{name}: {exc}") from None


def rounded_major_amount(value: Any, currency: str | None, name: str) -> int | None:
    """A fee in major units, to the nearest minor unit (gateways quote fees to more places)."""
    if value is None or currency is None or not is_supported(currency):
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise MalformedEvent(f"{name} is not a number")
    try:
        exact = Decimal(str(value).strip())
    except ArithmeticError:
        raise MalformedEvent(f"{name} is not a number") from None
    if not exact.is_finite() or exact < 0:
        raise MalformedEvent(f"{name} is not a fee")
    return int(exact.scaleb(precision(currency)).quantize(Decimal(1), ROUND_HALF_EVEN))


@dataclass(frozen=True)
class GatewayScheme:
    """One inbound webhook endpoint: its secret setting, signature check and event parser."""

    name: str  # stored in gateway_webhooks.gateway and in the transition source
    endpoint: str  # the view name under /api/v1/webhooks/
    setting: str  # the Settings attribute holding its secret
    variable: str  # the environment variable a deployment sets that secret with
    signature_header: str  # documented in the OpenAPI document
    verify: Callable[[str, Mapping[str, str], bytes], None]
    parse: Callable[[bytes | str], GatewayUpdate]
