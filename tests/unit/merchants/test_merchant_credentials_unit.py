"""Passwords, JWTs and request shapes of the merchants slice, without a database."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from pydantic import ValidationError

from payportal.merchants import passwords, tokens
from payportal.merchants.schemas import ProfileUpdate, RegisterMerchant
from payportal.settings import load_settings
from tests.conftest import TEST_SETTINGS

PEPPER = "unit-test-pepper-0123456789abcdef0123"


@pytest.fixture(scope="module")
def unit_settings():
    return load_settings({**TEST_SETTINGS, "sqlalchemy.url": "postgresql+psycopg://unused"}, {})


def test_bytes_past_72_count():
    shared = "é" * 36  # 72 bytes of UTF-8
    stored = passwords.hash_password(shared + "a", pepper=PEPPER, rounds=4)
    assert passwords.verify_password(shared + "a", stored, pepper=PEPPER)
    assert not passwords.verify_password(shared + "b", stored, pepper=PEPPER)
    assert not passwords.verify_password(shared, stored, pepper=PEPPER)


def test_the_pepper_is_part_of_the_hash():
    stored = passwords.hash_password("a long passphrase", pepper=PEPPER, rounds=4)
    assert not passwords.verify_password("a long passphrase", stored, pepper=PEPPER + "x")


def test_a_damaged_hash_never_verifies():
    assert not passwords.verify_password("a long passphrase", "not-a-bcrypt-hash", pepper=PEPPER)


def test_needs_rehash_follows_the_configured_cost():
    stored = passwords.hash_password("a long passphrase", pepper=PEPPER, rounds=4)
    assert not passwords.needs_rehash(stored, rounds=4)
    assert passwords.needs_rehash(stored, rounds=5)
    assert passwords.needs_rehash("garbage", rounds=4)


def test_leeway_is_at_most_a_minute():
    assert dt.timedelta(seconds=60) >= tokens.LEEWAY


def test_token_round_trip_keeps_family_and_password_stamp(unit_settings):
    merchant_id, family_id = uuid.uuid4(), uuid.uuid4()
    changed = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    access, _ = tokens.issue(unit_settings, tokens.ACCESS, merchant_id, password_changed_at=changed)
    claims = tokens.decode(unit_settings, access, tokens.ACCESS)
    assert claims.subject == merchant_id
    # microseconds: two changes within one second still tell tokens apart
    assert claims.password_stamp == tokens.password_stamp(changed)
    assert claims.password_stamp != tokens.password_stamp(changed + dt.timedelta(microseconds=1))
    refresh, _ = tokens.issue(unit_settings, tokens.REFRESH, merchant_id, family_id=family_id)
    assert tokens.decode(unit_settings, refresh, tokens.REFRESH).family_id == family_id
    with pytest.raises(tokens.TokenError):
        tokens.decode(unit_settings, refresh, tokens.ACCESS)
    with pytest.raises(tokens.TokenError):
        tokens.decode(unit_settings, access, tokens.REFRESH)


def test_an_expired_token_is_refused(unit_settings):
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    token, _ = tokens.issue(unit_settings, tokens.ACCESS, uuid.uuid4(), now=long_ago)
    with pytest.raises(tokens.TokenError):
        tokens.decode(unit_settings, token, tokens.ACCESS)


def registration(**fields) -> dict:
    return {
        "name": "Ada",
        "email": "ada@example.com",
        "password": "a long passphrase",
        "merchant_type": "individual",
        **fields,
    }


def test_emails_are_normalized_to_lower_case():
    body = RegisterMerchant.model_validate(registration(email="  Ada.Lovelace@Example.COM "))
    assert body.email == "ada.lovelace@example.com"
    # integration test suites use *.test domains; they are addresses like any other here
    assert RegisterMerchant.model_validate(registration(email="qa@shop.test")).email


@pytest.mark.parametrize("email", ["plain", "a@", "@example.com", "a@@example.com", "a b@x.com"])
def test_malformed_emails_are_refused(email):
    with pytest.raises(ValidationError):
        RegisterMerchant.model_validate(registration(email=email))


def test_country_codes_are_upper_cased():
    assert RegisterMerchant.model_validate(registration(country="ng")).country == "NG"


def test_profile_update_keeps_track_of_what_was_sent():
    update = ProfileUpdate.model_validate({"phone": None})
    assert update.model_fields_set == {"phone"}
    with pytest.raises(ValidationError):
        ProfileUpdate.model_validate({"name": None})
