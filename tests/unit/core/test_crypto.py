"""AES-256-GCM sealing with key ids: round trip, binding to a context, tampering, rotation."""

import base64
import os

import pytest

from payportal.crypto import DecryptionError, Keyring
from payportal.settings import parse_encryption_keys

KEY_A = ("a", os.urandom(32))
KEY_B = ("b", os.urandom(32))
SECRET = "4242424242424242"
CONTEXT = "payment_methods.sealed_details:7d3c"


def test_round_trip():
    keyring = Keyring([KEY_A])
    token = keyring.encrypt(SECRET, CONTEXT)
    assert keyring.decrypt(token, CONTEXT) == SECRET


def test_sealed_value_names_its_key_and_hides_the_plaintext():
    token = Keyring([KEY_A]).encrypt(SECRET, CONTEXT)
    version, key_id, _ = token.split(".", 2)
    assert (version, key_id) == ("v1", "a")
    assert SECRET not in token
    assert SECRET.encode().hex() not in token


def test_every_seal_uses_a_fresh_nonce():
    keyring = Keyring([KEY_A])
    assert keyring.encrypt(SECRET, CONTEXT) != keyring.encrypt(SECRET, CONTEXT)


def test_unicode_and_empty_values_round_trip():
    keyring = Keyring([KEY_A])
    for value in ("", "Zoë Ñandú 支付", '{"number": "4242"}'):
        assert keyring.decrypt(keyring.encrypt(value, CONTEXT), CONTEXT) == value


def test_a_value_only_opens_under_the_context_it_was_sealed_with():
    keyring = Keyring([KEY_A])
    token = keyring.encrypt(SECRET, "payment_methods.sealed_details:row-1")
    with pytest.raises(DecryptionError):
        keyring.decrypt(token, "payment_methods.sealed_details:row-2")
    with pytest.raises(DecryptionError):
        keyring.decrypt(token)


def _flip(token: str, index: int) -> str:
    version, key_id, encoded = token.split(".", 2)
    raw = bytearray(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    raw[index] ^= 0x01
    return f"{version}.{key_id}." + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


@pytest.mark.parametrize("index", [0, 11, 12, -1])  # nonce, last nonce byte, ciphertext, tag
def test_any_flipped_bit_is_detected(index):
    keyring = Keyring([KEY_A])
    token = keyring.encrypt(SECRET, CONTEXT)
    with pytest.raises(DecryptionError, match="does not decrypt"):
        keyring.decrypt(_flip(token, index), CONTEXT)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-4],  # truncated tag
        lambda t: "v1.a." + t.split(".", 2)[2][:10],  # shorter than a nonce
        lambda t: t + "!",  # not base64
        lambda t: "v1.a",  # no payload at all
        lambda t: "not sealed",
        lambda t: "v2." + t.split(".", 1)[1],  # unknown format version
    ],
)
def test_malformed_values_fail_as_decryption_errors(mangle):
    keyring = Keyring([KEY_A])
    with pytest.raises(DecryptionError):
        keyring.decrypt(mangle(keyring.encrypt(SECRET, CONTEXT)), CONTEXT)


def test_relabelling_a_value_with_another_key_id_does_not_open_it():
    keyring = Keyring([KEY_A, KEY_B])
    token = keyring.encrypt(SECRET, CONTEXT)
    with pytest.raises(DecryptionError):
        keyring.decrypt("v1.b." + token.split(".", 2)[2], CONTEXT)


def test_a_key_missing_from_the_keyring_is_named():
    token = Keyring([KEY_A]).encrypt(SECRET, CONTEXT)
    with pytest.raises(DecryptionError, match="no key 'a'"):
        Keyring([KEY_B]).decrypt(token, CONTEXT)


def test_rotation_old_values_open_while_new_ones_use_the_first_key():
    old = Keyring([KEY_A]).encrypt(SECRET, CONTEXT)
    rotated_keyring = Keyring([KEY_B, KEY_A])
    assert rotated_keyring.decrypt(old, CONTEXT) == SECRET
    assert rotated_keyring.needs_rotation(old)
    resealed = rotated_keyring.encrypt(rotated_keyring.decrypt(old, CONTEXT), CONTEXT)
    assert rotated_keyring.key_id_of(resealed) == "b"
    assert not rotated_keyring.needs_rotation(resealed)
    # once everything is re-sealed the old key can go
    assert Keyring([KEY_B]).decrypt(resealed, CONTEXT) == SECRET


def test_keyring_from_the_setting_format():
    encoded = base64.b64encode(KEY_B[1]).decode()
    keys = parse_encryption_keys(f"b:{encoded}, a:{base64.b64encode(KEY_A[1]).decode()}")
    keyring = Keyring(keys)
    assert keyring.primary_id == "b"
    assert keyring.decrypt(Keyring([KEY_A]).encrypt(SECRET), "") == SECRET


def test_a_keyring_needs_a_key():
    with pytest.raises(ValueError, match="at least one key"):
        Keyring([])
