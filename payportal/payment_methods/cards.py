"""Card numbers: the Luhn check, the brand a number belongs to, when a card stops working, and
the guard that keeps card numbers out of every other string the platform stores."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError


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


# Digits with single spaces or hyphens between them, the ways people type a card number.
_DIGIT_RUN = re.compile(r"\d+(?:[ -]\d+)*")
_DIGITS = re.compile(r"\d+")
# First digits of payment cards of any network (ISO/IEC 7812 major industry identifiers 2-6),
# wider than BRAND_RULES on purpose: the guard must also catch cards we do not accept.
_CARD_INDUSTRIES = frozenset("23456")
GUARD_MIN_LENGTH = 13
E164_MAX_DIGITS = 15


def looks_like_card_number(digits: str) -> bool:
    return (
        GUARD_MIN_LENGTH <= len(digits) <= MAX_LENGTH
        and digits[0] in _CARD_INDUSTRIES
        and luhn_valid(digits)
    )


def card_number_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of every card number in free text, typed bare, grouped or inside words."""
    for run in _DIGIT_RUN.finditer(text):
        groups = list(_DIGITS.finditer(run.group()))
        for first, group in enumerate(groups):
            digits = ""
            for last in groups[first:]:
                digits += last.group()
                if len(digits) > MAX_LENGTH:
                    break
                if looks_like_card_number(digits):
                    yield run.start() + group.start(), run.start() + last.end()
                    break


def contains_card_number(text: str) -> bool:
    return next(card_number_spans(text), None) is not None


def mask_card_numbers(text: str) -> str:
    """Every card number in `text` with all but its last four digits replaced by '*'."""
    spans = list(card_number_spans(text))
    if not spans:
        return text
    chars = list(text)
    for start, end in spans:
        digit_positions = [i for i in range(start, end) if chars[i].isdigit()]
        for i in digit_positions[:-4]:
            chars[i] = "*"
    return "".join(chars)


def _international_phone(value: Any) -> bool:
    return (
        isinstance(value, str)
        and value.startswith("+")
        and len(re.sub(r"\D", "", value)) <= E164_MAX_DIGITS
    )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings(item)


class RefusesCardNumbers(BaseModel):
    """Base of request models whose strings are stored: a card number in any of them (a value,
    a metadata key or value) is a 422, so no table, event or log ever holds one in clear.

    `unguarded_fields` may hold one: sealed at rest (card.number) or never stored (passwords).
    `phone_fields` hold phone numbers: one in international form ("+" and at most E.164's 15
    digits) is a phone, whatever its digits look like."""

    unguarded_fields: ClassVar[frozenset[str]] = frozenset()
    phone_fields: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_card_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name in cls.unguarded_fields:
            return value
        if info.field_name in cls.phone_fields and _international_phone(value):
            return value
        if any(contains_card_number(text) for text in _strings(value)):
            raise PydanticCustomError(
                "card_number_in_text",
                "must not contain a card number (card numbers go only in a card payment "
                "method's card.number, which is sealed)",
            )
        return value
