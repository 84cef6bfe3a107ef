"""Luhn, brand detection and card expiry."""

import datetime as dt

import pytest

from payportal.payment_methods.cards import (
    CardNumberError,
    card_brand,
    card_expires_at,
    luhn_valid,
    normalize_number,
    validate_card_number,
)

# Test numbers the networks and gateways publish (all pass Luhn).
BRANDED_NUMBERS = [
    ("4242424242424242", "visa"),
    ("4111111111111111", "visa"),
    ("4222222222222", "visa"),  # 13 digits
    ("4000056655665556", "visa"),
    ("5555555555554444", "mastercard"),
    ("5105105105105100", "mastercard"),
    ("2223003122003222", "mastercard"),  # 2-series
    ("2720990000000007", "mastercard"),  # top of the 2-series range
    ("378282246310005", "amex"),
    ("371449635398431", "amex"),
    ("6011111111111117", "discover"),
    ("6011000990139424", "discover"),
    ("6445644564456445", "discover"),
    ("6221260000000000", "discover"),  # UnionPay co-brand range
    ("3566002020360505", "jcb"),
    ("3530111333300000", "jcb"),
    ("36227206271667", "diners"),  # 14 digits
    ("30569309025904", "diners"),
    ("3056930009020004", "diners"),  # 16 digits
    ("38520000023237", "diners"),
]


@pytest.mark.parametrize(("number", "brand"), BRANDED_NUMBERS)
def test_known_numbers_pass_luhn_and_get_their_brand(number, brand):
    assert luhn_valid(number)
    assert card_brand(number) == brand
    assert validate_card_number(number) == (number, brand)


@pytest.mark.parametrize(
    "number",
    ["4242424242424241", "5555555555554440", "378282246310006", "6011111111111110"],
)
def test_one_wrong_digit_fails_luhn(number):
    assert not luhn_valid(number)
    with pytest.raises(CardNumberError, match="Luhn"):
        validate_card_number(number)


def test_luhn_doubles_every_second_digit_from_the_right():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


@pytest.mark.parametrize(
    "number",
    [
        "2220990000000002",  # just below the mastercard 2-series
        "2721000000000004",  # just above it
        "6200000000000005",  # UnionPay outside Discover's co-brand range
        "9999999999999995",
        "1234567812345670",
    ],
)
def test_luhn_valid_numbers_of_no_supported_brand_are_refused(number):
    assert luhn_valid(number)
    assert card_brand(number) is None
    with pytest.raises(CardNumberError, match="brand"):
        validate_card_number(number)


def test_brand_needs_a_length_the_network_issues():
    # a Luhn-valid 17-digit number starting with 4 is no Visa
    assert luhn_valid("42424242424242426")
    assert card_brand("42424242424242426") is None


def test_spaces_and_hyphens_are_ignored():
    assert normalize_number("4242 4242-4242 4242") == "4242424242424242"
    assert validate_card_number("3782 822463 10005") == ("378282246310005", "amex")


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("4242x24242424242", "digits only"),
        ("\uff14\uff12" * 8, "digits only"),  # full-width digits are not ASCII
        ("42424242424", "12 to 19"),
        ("42424242424242424242", "12 to 19"),
    ],
)
def test_malformed_numbers_are_refused(number, message):
    with pytest.raises(CardNumberError, match=message):
        validate_card_number(number)


def test_a_card_works_through_the_last_day_of_its_expiry_month():
    assert card_expires_at(2, 2028) == dt.datetime(2028, 3, 1, tzinfo=dt.UTC)
    assert card_expires_at(12, 2029) == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
