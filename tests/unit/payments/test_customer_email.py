"""customer_email: plain addresses are taken without email_validator, and every address gets
exactly the answer pydantic's EmailStr gives it (accepted and normalized, or refused)."""

from __future__ import annotations

import random

import email_validator
import pytest
from pydantic import TypeAdapter, ValidationError
from pydantic.networks import validate_email

from payportal.payments.schemas import InitializePayment, _plain_email

CASES = [
    "ada@example.com",
    "Ada.Lovelace+orders@Mail.Example.CO.UK",
    "a@b.cd",
    "o'brien@example.ie",
    "x!#$%&'*+/=?^_`{|}~-y@example.org",
    "first.last@sub-domain.example.com",
    "a" * 64 + "@example.com",
    "a" * 65 + "@example.com",
    "a@" + "b" * 63 + ".com",
    "a@" + "b" * 64 + ".com",
    "a@" + ".".join(["b" * 60] * 4) + ".com",
    "x@" + ".".join(["b" * 61] * 4),
    ".ada@example.com",
    "ada.@example.com",
    "ada..lovelace@example.com",
    "ada@-example.com",
    "ada@example-.com",
    "ada@exa_mple.com",
    "ada@example",
    "ada@example.c",
    "ada@example.123",
    "ada@example.com.",
    "ada@.example.com",
    "ada@@example.com",
    "ada@example..com",
    "ada example@example.com",
    " ada@example.com",
    "ada@example.com ",
    "Ada <ada@example.com>",
    '"ada"@example.com',
    "ada@[127.0.0.1]",
    "ada@localhost",
    "ada@mail.local",
    "ada@shop.test",
    "ada@x.invalid",
    "ada@1.in-addr.arpa",
    "ada@hidden.onion",
    "ada@ab--cd.com",
    "ada@xn--bcher-kva.example",
    "ada@bücher.example",
    "adá@example.com",
    "ada@EXAMPLE.COM",
    "ada@example.com\n",
    "ada\x00@example.com",
    "",
    "@example.com",
    "ada@",
]

# mostly what addresses are made of, sometimes what trips validators up
COMMON = "abcxyzABCXYZ0189"
RARE = ".-_+@!'`~ \"<>[]()\u00fc\u00e9\u0130\u212a"


def pydantic_answer(value: str) -> str | None:
    """What pydantic's EmailStr makes of `value`, lower-cased: the normal form, or None."""
    try:
        return validate_email(value)[1].lower()
    except ValueError:
        return None


def our_answer(value: str) -> str | None:
    try:
        model = InitializePayment(amount=100, currency="USD", customer_email=value)
    except ValidationError:
        return None
    return model.customer_email


def random_addresses(count: int) -> list[str]:
    rng = random.Random(20261127)

    def text(low: int, high: int) -> str:
        return "".join(
            rng.choice(RARE if rng.random() < 0.08 else COMMON)
            for _ in range(rng.randint(low, high))
        )

    made = []
    for _ in range(count):
        labels = [text(0, 6) for _ in range(rng.randint(0, 3))]
        top = rng.choice(["com", "io", "C0M", "x", "org", "test", "local", text(0, 4)])
        made.append(f"{text(0, 8)}@{'.'.join([*labels, top])}")
    return made


@pytest.mark.parametrize("value", CASES)
def test_each_case_gets_pydantics_answer(value):
    assert our_answer(value) == pydantic_answer(value)


def test_random_addresses_get_pydantics_answer():
    addresses = random_addresses(4000)
    taken_plain = [a for a in addresses if _plain_email(a)]
    assert len(taken_plain) > 100  # the comparison covers the fast path, not only the fallback
    for value in addresses:
        assert our_answer(value) == pydantic_answer(value), value


class Called(Exception):
    """email_validator was asked (pydantic would turn an AssertionError into a refusal)."""


def test_a_plain_address_never_reaches_email_validator(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise Called

    monkeypatch.setattr(email_validator, "validate_email", refuse)
    assert our_answer("Ada.Lovelace@Example.com") == "ada.lovelace@example.com"
    with pytest.raises(Called):
        our_answer("adá@example.com")


def test_the_api_schema_still_says_email():
    schema = TypeAdapter(InitializePayment).json_schema()
    email = schema["properties"]["customer_email"]["anyOf"][0]
    assert email == {"type": "string", "format": "email", "maxLength": 320}
