"""Currency precision from Babel, exact conversions between major and minor units, fees."""

from decimal import Decimal

import pytest

from payportal.money import (
    SUPPORTED_CURRENCIES,
    MoneyError,
    format_money,
    platform_fee,
    precision,
    to_major,
    to_minor,
)


@pytest.mark.parametrize(("currency", "digits"), [("JPY", 0), ("USD", 2), ("EUR", 2), ("KWD", 3)])
def test_precision_comes_from_the_currency(currency, digits):
    assert precision(currency) == digits


@pytest.mark.parametrize("code", ["jpy", "XYZ", "", "US"])
def test_precision_refuses_codes_that_are_not_iso_4217(code):
    # Babel would answer 2 for these, which for 'jpy' is silently wrong
    with pytest.raises(MoneyError, match="ISO 4217"):
        precision(code)


def test_every_supported_currency_has_a_precision():
    assert all(precision(code) in (0, 2, 3) for code in SUPPORTED_CURRENCIES)


@pytest.mark.parametrize(
    ("major", "currency", "minor"),
    [
        ("10.50", "USD", 1050),
        ("0.01", "USD", 1),
        ("500", "JPY", 500),
        ("1.234", "KWD", 1234),
        ("12", "KWD", 12000),
        (Decimal("99999999999.99"), "USD", 9999999999999),
        (7, "EUR", 700),
        ("-2.50", "USD", -250),
    ],
)
def test_to_minor_is_exact(major, currency, minor):
    assert to_minor(major, currency) == minor
    assert isinstance(to_minor(major, currency), int)


@pytest.mark.parametrize(
    ("major", "currency"),
    [("10.505", "USD"), ("1.5", "JPY"), ("0.0001", "KWD")],
)
def test_to_minor_refuses_more_decimals_than_the_currency_has(major, currency):
    with pytest.raises(MoneyError, match="decimal places"):
        to_minor(major, currency)


@pytest.mark.parametrize("major", ["ten", "", "NaN", "Infinity", "1,50"])
def test_to_minor_refuses_what_is_not_a_finite_number(major):
    with pytest.raises(MoneyError):
        to_minor(major, "USD")


@pytest.mark.parametrize(
    ("minor", "currency", "major"),
    [(1050, "USD", "10.50"), (500, "JPY", "500"), (1234, "KWD", "1.234"), (5, "USD", "0.05")],
)
def test_to_major_keeps_the_currency_scale(minor, currency, major):
    assert str(to_major(minor, currency)) == major
    assert to_minor(to_major(minor, currency), currency) == minor


def test_format_money_is_for_display():
    assert format_money(1050, "USD") == "$10.50"
    assert format_money(500, "JPY") == "¥500"
    assert format_money(1234, "KWD") == "KWD1.234"


def test_platform_fee_rounds_half_even_to_a_whole_minor_unit_then_adds_the_fixed_part():
    fixed = {"USD": 30}
    assert platform_fee(1000, "USD", Decimal("2.9"), fixed) == 29 + 30
    assert platform_fee(50, "USD", Decimal("1"), fixed) == 0 + 30  # 0.5 -> 0
    assert platform_fee(150, "USD", Decimal("1"), fixed) == 2 + 30  # 1.5 -> 2
    assert platform_fee(250, "EUR", Decimal("1"), fixed) == 2  # 2.5 -> 2, no fixed part for EUR
    assert platform_fee(1000, "USD", Decimal("0"), {}) == 0
