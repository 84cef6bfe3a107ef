"""Encryption at rest: AES-256-GCM under a key id, so keys can rotate without losing old rows.

A sealed value reads `v1.<key id>.<base64url(nonce || ciphertext+tag)>`. The first key of the
keyring encrypts; every key decrypts. `payportal-admin <ini> rotate-encryption-key` re-seals
every stored value under the first key.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"
NONCE_BYTES = 12


class DecryptionError(ValueError):
    """A sealed value that no key of the keyring opens (wrong key, unknown id, tampered)."""


class Keyring:
    def __init__(self, keys: list[tuple[str, bytes]]):
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self.primary_id = keys[0][0]
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}

    def encrypt(self, plaintext: str, context: str = "") -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.primary_id].encrypt(nonce, plaintext.encode(), context.encode())
        encoded = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{VERSION}.{self.primary_id}.{encoded}"

    def decrypt(self, token: str, context: str = "") -> str:
        version, key_id, encoded = _parts(token)
        cipher = self._ciphers.get(key_id)
        if version != VERSION or cipher is None:
            raise DecryptionError(f"no key {key_id!r} in the keyring")
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise DecryptionError("sealed value is not valid base64") from None
        if len(raw) <= NONCE_BYTES:
            raise DecryptionError("sealed value is truncated")
        try:
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()).decode()
        except InvalidTag:
            raise DecryptionError("value does not decrypt under its key") from None

    def key_id_of(self, token: str) -> str:
        return _parts(token)[1]

    def needs_rotation(self, token: str) -> bool:
        return self.key_id_of(token) != self.primary_id


def _parts(token: str) -> tuple[str, str, str]:
    parts = token.split(".", 2)
    if len(parts) != 3:
        raise DecryptionError("not a sealed value")
    return parts[0], parts[1], parts[2]


def keyring_from_settings(settings) -> Keyring:
    return Keyring(settings.encryption_keys)


def includeme(config):
    config.registry.keyring = keyring_from_settings(config.registry.payportal_settings)
