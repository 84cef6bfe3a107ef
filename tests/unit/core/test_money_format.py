"""format_money renders exactly what Babel's format_currency renders, from a pattern taken apart
once per currency and locale instead of parsing the locale and applying the pattern per call."""

import random

import pytest
from babel import Locale
from babel.numbers import format_currency, list_currencies

from payportal import money
from payportal.money import SUPPORTED_CURRENCIES, MoneyError, format_money, to_major

AMOUNTS = [
    0, 1, -1, 5, 9, 10, 99, 100, 101, 999, 1000, 1001, 1050, 9999, 10_000, 99_999, 100_000,
    123_456, 999_999, 1_000_000, 1_234_567, 10_000_000, 123_456_789, 1_000_000_000,
    9_876_543_210, 10**12, 10**15 + 3, 2**53 + 1, 2**63 - 1, -(2**63), 10**24 - 1, 10**24,
    10**30 + 7, -1050, -999_999, -123_456_789_012,
]  # fmt: skip
AMOUNTS += random.Random(9).sample(range(-(10**13), 10**13), 40)

# group sizes of 3 and of 3-then-2, separators before and after, spaces, no-break spaces,
# right-to-left marks, symbols after the number, a locale Babel itself falls back for
LOCALES = [
    "en_US", "en_GB", "en_IN", "de_DE", "de_CH", "fr_FR", "fr_CH", "nl_NL", "ja_JP", "sw_KE",
    "ha_NG", "ar_EG", "fa_IR", "he_IL", "hi_IN", "pt_BR", "es_CO", "it_CH", "ko_KR", "zh_Hans_CN",
]  # fmt: skip


def outcome(render, *args):
    """The text, or the kind of error (Babel's Decimal context refuses 10**30 and beyond)."""
    try:
        return render(*args)
    except ArithmeticError as exc:
        return type(exc)


def babel(minor: int, currency: str, locale: str) -> str:
    return format_currency(to_major(minor, currency), currency, locale=locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_every_supported_currency_renders_as_babel_does(locale):
    for currency in SUPPORTED_CURRENCIES:
        for minor in AMOUNTS:
            assert outcome(format_money, minor, currency, locale) == outcome(
                babel, minor, currency, locale
            ), (minor, currency, locale)


def test_every_currency_babel_knows_renders_as_babel_does_in_en_us():
    for currency in sorted(list_currencies()):
        if not money.is_currency(currency):
            continue
        for minor in AMOUNTS[::3]:
            assert outcome(format_money, minor, currency) == outcome(
                babel, minor, currency, "en_US"
            ), (minor, currency)


def test_the_dashboard_locale_takes_the_shortcut_for_every_supported_currency():
    # the point of the cached pattern: en_US never goes back to Babel's per-call work
    for currency in SUPPORTED_CURRENCIES:
        assert money._currency_format(currency, "en_US") is not None


def test_a_locale_object_is_still_accepted():
    assert format_money(123456, "EUR", Locale.parse("de_DE")) == babel(123456, "EUR", "de_DE")


@pytest.mark.parametrize("code", ["usd", "XYZ", ""])
def test_codes_that_are_not_iso_4217_are_refused_as_before(code):
    with pytest.raises(MoneyError):
        format_money(100, code)
