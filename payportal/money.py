"""Money: integer minor units, currency precision from Babel, exact conversions and fees."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache

from babel.numbers import format_currency, get_currency_precision, is_currency

# Currencies payportal accepts (ISO 4217). Precision comes from Babel (JPY 0, USD 2, KWD 3).
SUPPORTED_CURRENCIES: tuple[str, ...] = (
    "USD",
    "EUR",
    "GBP",
    "NGN",
    "GHS",
    "KES",
    "ZAR",
    "JPY",
    "CAD",
    "AUD",
    "CHF",
    "KWD",
)


class MoneyError(ValueError):
    """An amount that cannot be represented exactly in the currency."""


@cache
def precision(currency: str) -> int:
    """Digits after the decimal point in the currency's minor unit."""
    # Babel answers 2 for any code it does not know ('jpy', 'XYZ'): that would be silently wrong.
    if not is_currency(currency):
        raise MoneyError(f"{currency!r} is not an ISO 4217 currency code")
    return get_currency_precision(currency)


def is_supported(currency: str) -> bool:
    return currency in SUPPORTED_CURRENCIES


def to_minor(major: str | Decimal | int, currency: str) -> int:
    """'10.50' USD -> 1050; '500' JPY -> 500. Refuses more decimals than the currency has."""
    try:
        value = Decimal(str(major).strip())
    except InvalidOperation:
        raise MoneyError(f"{major!r} is not a number") from None
    if not value.is_finite():
        raise MoneyError("amount must be a finite number")
    scaled = value.scaleb(precision(currency))
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{currency} has {precision(currency)} decimal places")
    return int(scaled)


def to_major(minor: int, currency: str) -> Decimal:
    """1050 USD -> Decimal('10.50')."""
    digits = precision(currency)
    return (Decimal(minor).scaleb(-digits)).quantize(Decimal(1).scaleb(-digits))


def format_money(minor: int, currency: str, locale: str = "en_US") -> str:
    """1050 USD -> '$10.50'; for display only."""
    return format_currency(to_major(minor, currency), currency, locale=locale)


def platform_fee(amount: int, currency: str, percent: Decimal, fixed: dict[str, int]) -> int:
    """percent of the amount, rounded half-even to a whole minor unit, plus the fixed part."""
    variable = (Decimal(amount) * percent / Decimal(100)).quantize(Decimal(1), ROUND_HALF_EVEN)
    return int(variable) + int(fixed.get(currency, 0))
