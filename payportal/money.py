"""Money: integer minor units, currency precision from Babel, exact conversions and fees."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache, lru_cache

from babel import Locale
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


@dataclass(frozen=True)
class _CurrencyFormat:
    """A locale's standard currency pattern for one currency, taken apart once: what Babel's
    format_currency works out again on every call (locale, pattern, symbols)."""

    digits: int
    scale: int  # 10 ** digits
    prefix: tuple[str, str]  # (positive, negative), the currency sign already in place
    suffix: tuple[str, str]
    min_int: int
    grouping: tuple[int, int]
    group: str
    decimal: str


# Past this many digits Babel's Decimal arithmetic (28 significant digits) rounds; leave such
# amounts to Babel itself so the output stays the same (no amount here comes near it).
_FAST_LIMIT = 10**24


@cache
def _locale(identifier: str) -> Locale:
    return Locale.parse(identifier)


@lru_cache(maxsize=256)
def _currency_format(currency: str, locale: str) -> _CurrencyFormat | None:
    """The pattern of format_currency(..., locale=locale) for the currency, or None where this
    shortcut would not render exactly as Babel does (then Babel formats)."""
    digits = precision(currency)
    loc = _locale(locale)
    pattern = loc.currency_formats["standard"]
    symbols = loc.number_symbols["latn"]
    group, decimal = symbols.get("group", ","), symbols.get("decimal", ".")
    symbol = loc.currency_symbols.get(currency, currency)
    affixes = (*pattern.prefix, *pattern.suffix)
    if (
        pattern.exp_prec
        or "@" in pattern.pattern
        or pattern.scale != 0
        or pattern.number_pattern == ""
        # the long name depends on the amount (plural forms)
        or any("¤¤¤" in affix for affix in affixes)
        # Babel strips quotes over the whole text, digits and symbols included
        or any("'" in text for text in (*affixes, group, decimal, symbol))
        or any("¤" in text for text in (group, decimal, symbol))
    ):
        return None

    def place_sign(affix: str) -> str:
        return affix.replace("¤¤", currency.upper()).replace("¤", symbol)

    return _CurrencyFormat(
        digits=digits,
        scale=10**digits,
        prefix=(place_sign(pattern.prefix[0]), place_sign(pattern.prefix[1])),
        suffix=(place_sign(pattern.suffix[0]), place_sign(pattern.suffix[1])),
        min_int=pattern.int_prec[0],
        grouping=pattern.grouping,
        group=group,
        decimal=decimal,
    )


def _group(digits: str, fmt: _CurrencyFormat) -> str:
    """Babel's NumberPattern._format_int."""
    if len(digits) < fmt.min_int:
        digits = "0" * (fmt.min_int - len(digits)) + digits
    size = fmt.grouping[0]
    grouped = ""
    while len(digits) > size:
        grouped = fmt.group + digits[-size:] + grouped
        digits = digits[:-size]
        size = fmt.grouping[1]
    return digits + grouped


def format_money(minor: int, currency: str, locale: str = "en_US") -> str:
    """1050 USD -> '$10.50'; for display only. Exactly what Babel's format_currency renders for
    the amount in major units (tests/unit/core/test_money_format.py compares them), without
    parsing the locale and applying the pattern anew on every call."""
    fmt = _currency_format(currency, locale) if isinstance(locale, str) else None
    if fmt is None or not -_FAST_LIMIT < minor < _FAST_LIMIT:
        return format_currency(to_major(minor, currency), currency, locale=locale)
    negative = int(minor < 0)
    whole, fraction = divmod(-minor if negative else minor, fmt.scale)
    number = _group(str(whole), fmt)
    if fmt.digits:
        number += fmt.decimal + str(fraction).rjust(fmt.digits, "0")
    return fmt.prefix[negative] + number + fmt.suffix[negative]


def platform_fee(amount: int, currency: str, percent: Decimal, fixed: dict[str, int]) -> int:
    """percent of the amount, rounded half-even to a whole minor unit, plus the fixed part."""
    variable = (Decimal(amount) * percent / Decimal(100)).quantize(Decimal(1), ROUND_HALF_EVEN)
    return int(variable) + int(fixed.get(currency, 0))
