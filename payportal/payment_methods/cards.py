"""Card numbers: the Luhn check, the brand a number belongs to, and when a card stops working."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class BrandRule:
    brand: str
    # inclusive ranges of leading digits, compared on as many digits as the bounds have
    prefixes: tuple[tuple[int, int], ...]
    lengths: frozenset[int]


# Issuer identification ranges and lengths as the networks publish them; no two brands'
# ranges overlap (Discover's 622126-622925 is its UnionPay co-brand range, not all of 62).
BRAND_RULES: tuple[BrandRule, ...] = (
    BrandRule("amex", ((34, 34), (37, 37)), frozenset({15})),
    BrandRule(
        "diners",
        ((300, 305), (3095, 3095), (36, 36), (38, 39)),
        frozenset(range(14, 20)),
    ),
    BrandRule("jcb", ((3528, 3589),), frozenset(range(16, 20))),
    BrandRule("visa", ((4, 4),), frozenset({13, 16, 19})),
    BrandRule("mastercard", ((51, 55), (2221, 2720)), frozenset({16})),
    BrandRule(
        "discover",
        ((6011, 6011), (622126, 622925), (644, 649), (65, 65)),
        frozenset(range(16, 20)),
    ),
)
BRANDS = tuple(rule.brand for rule in BRAND_RULES)

MIN_LENGTH = 12
MAX_LENGTH = 19


class CardNumberError(ValueError):
    """A card number that is malformed, fails Luhn, or belongs to no supported brand."""


def normalize_number(number: str) -> str:
    """'4242 4242-4242 4242' -> '4242424242424242'; spaces and hyphens are how people type it."""
    digits = number.replace(" ", "").replace("-", "")
    if not digits.isascii() or not digits.isdigit():
        raise CardNumberError("card number must contain digits only")
    if not MIN_LENGTH <= len(digits) <= MAX_LENGTH:
        raise CardNumberError(f"card number must have {MIN_LENGTH} to {MAX_LENGTH} digits")
    return digits


def luhn_valid(digits: str) -> bool:
    """The mod-10 checksum every card number carries in its last digit."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def card_brand(digits: str) -> str | None:
    """The brand whose range and lengths the number fits, or None."""
    for rule in BRAND_RULES:
        for low, high in rule.prefixes:
            width = len(str(low))
            if low <= int(digits[:width]) <= high and len(digits) in rule.lengths:
                return rule.brand
    return None


def validate_card_number(number: str) -> tuple[str, str]:
    """Normalize and check a card number; returns (digits, brand) or raises CardNumberError."""
    digits = normalize_number(number)
    if not luhn_valid(digits):
        raise CardNumberError("card number is not valid (Luhn check failed)")
    brand = card_brand(digits)
    if brand is None:
        raise CardNumberError(f"card brand is not supported (accepted: {', '.join(BRANDS)})")
    return digits, brand


def card_expires_at(exp_month: int, exp_year: int) -> dt.datetime:
    """A card is good through the last day of its expiry month: it lapses when the next begins."""
    if exp_month == 12:
        return dt.datetime(exp_year + 1, 1, 1, tzinfo=dt.UTC)
    return dt.datetime(exp_year, exp_month + 1, 1, tzinfo=dt.UTC)
