"""The payment state machine's table, reachability and the platform fee's rounding."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from payportal.money import platform_fee
from payportal.payments.models import PaymentStatus
from payportal.payments.state import (
    ALLOWED,
    SETTLED,
    TERMINAL,
    InvalidTransition,
    apply_transition,
    can_transition,
    is_reachable,
)

S = PaymentStatus

# DESIGN.md, written out by hand so a change to the table has to change this too
EXPECTED = {
    (S.PENDING, S.PROCESSING),
    (S.PENDING, S.COMPLETED),
    (S.PENDING, S.FAILED),
    (S.PENDING, S.CANCELLED),
    (S.PENDING, S.EXPIRED),
    (S.PROCESSING, S.COMPLETED),
    (S.PROCESSING, S.FAILED),
    (S.PROCESSING, S.CANCELLED),
    (S.COMPLETED, S.PARTIALLY_REFUNDED),
    (S.COMPLETED, S.REFUNDED),
    (S.COMPLETED, S.DISPUTED),
    (S.PARTIALLY_REFUNDED, S.PARTIALLY_REFUNDED),
    (S.PARTIALLY_REFUNDED, S.REFUNDED),
}
ALL_PAIRS = list(itertools.product(S, S))
FORBIDDEN = [pair for pair in ALL_PAIRS if pair not in EXPECTED]


def test_the_table_covers_every_status():
    assert set(ALLOWED) == set(S)
    assert len(ALL_PAIRS) == 81 and len(FORBIDDEN) == 81 - 13


@pytest.mark.parametrize(("current", "target"), sorted(EXPECTED))
def test_allowed_pair(current, target):
    assert can_transition(current, target)


@pytest.mark.parametrize(("current", "target"), FORBIDDEN)
def test_forbidden_pair(current, target):
    assert not can_transition(current, target)


class _Unlocked:
    """A payment-shaped value: a forbidden move must be refused before anything is touched."""

    def __init__(self, status):
        self.status = status
        self.amount = 100


@pytest.mark.parametrize(("current", "target"), FORBIDDEN)
def test_apply_transition_refuses_forbidden_pair_naming_both_states(current, target):
    with pytest.raises(InvalidTransition) as caught:
        apply_transition(None, _Unlocked(current), target, source="api", settings=None)
    error = caught.value
    assert (error.status, error.code) == (409, "invalid_transition")
    assert f"from {current} to {target}" in error.message


def test_terminal_statuses():
    assert {S.FAILED, S.CANCELLED, S.EXPIRED, S.REFUNDED, S.DISPUTED} == TERMINAL
    assert {S.COMPLETED, S.PARTIALLY_REFUNDED, S.REFUNDED, S.DISPUTED} == SETTLED


@pytest.mark.parametrize(
    ("current", "target", "reachable"),
    [
        (S.PENDING, S.REFUNDED, True),  # pending -> completed -> refunded
        (S.PENDING, S.DISPUTED, True),
        (S.PROCESSING, S.PARTIALLY_REFUNDED, True),
        (S.PROCESSING, S.EXPIRED, False),  # only pending expires
        (S.PROCESSING, S.PENDING, False),
        (S.COMPLETED, S.FAILED, False),
        (S.PARTIALLY_REFUNDED, S.PARTIALLY_REFUNDED, True),
        (S.PARTIALLY_REFUNDED, S.DISPUTED, False),
        (S.COMPLETED, S.COMPLETED, False),
    ],
)
def test_reachability(current, target, reachable):
    assert is_reachable(current, target) is reachable


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_nothing_is_reachable_from_a_terminal_status(status):
    assert not any(is_reachable(status, target) for target in S)


@pytest.mark.parametrize(
    ("amount", "currency", "percent", "fixed", "fee"),
    [
        (1050, "USD", "2.9", {"USD": 30}, 30 + 30),  # 30.45 -> 30
        (1550, "USD", "1", {}, 16),  # 15.5 -> 16 (half to even)
        (1450, "USD", "1", {}, 14),  # 14.5 -> 14 (half to even)
        (250, "JPY", "1", {"USD": 30}, 2),  # 2.5 -> 2; no fixed fee for JPY
        (350, "JPY", "1", {}, 4),  # 3.5 -> 4
        (12_345, "KWD", "2.5", {"KWD": 100}, 309 + 100),  # 308.625 -> 309
        (99_999_999_999, "USD", "2.9", {"USD": 30}, 2_900_000_000 + 30),  # 2,899,999,999.971
        (1, "EUR", "0", {"EUR": 25}, 25),
    ],
)
def test_platform_fee_rounds_half_even_in_minor_units(amount, currency, percent, fixed, fee):
    result = platform_fee(amount, currency, Decimal(percent), fixed)
    assert result == fee
    assert isinstance(result, int)
