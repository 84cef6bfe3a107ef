"""Gateway signature schemes, checked over the raw body before anything parses it.

Every comparison is constant-time; a rejection never says what the expected value was.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

from payportal.errors import AuthenticationFailed

# how far a signed timestamp may be from our clock, in either direction
TOLERANCE_SECONDS = 300
_TIMESTAMP = re.compile(r"^\d{1,12}$")


class SignatureRejected(AuthenticationFailed):
    """A webhook whose signature is missing, wrong or too old (401, nothing stored)."""

    code = "invalid_signature"


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def _hmac_hex(secret: str, message: bytes, digest) -> str:
    return hmac.new(secret.encode(), message, digest).hexdigest()


def _check_timestamp(value: str, now: float | None) -> int:
    if not _TIMESTAMP.match(value):
        raise SignatureRejected("webhook timestamp is not a unix time in seconds")
    timestamp = int(value)
    now = time.time() if now is None else now
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise SignatureRejected(
            f"webhook timestamp is more than {TOLERANCE_SECONDS} seconds from the server's clock"
        )
    return timestamp


def generic_signature(secret: str, timestamp: str, raw: bytes) -> str:
    """The X-Signature value: 'sha256=' + hex HMAC-SHA256 of '<timestamp>.<raw body>'."""
    return "sha256=" + _hmac_hex(secret, timestamp.encode() + b"." + raw, hashlib.sha256)


def verify_generic_signature(
    secret: str, timestamp: str | None, signature: str | None, raw: bytes, now: float | None = None
) -> None:
    if not timestamp or not signature:
        raise SignatureRejected("X-Timestamp and X-Signature headers are required")
    timestamp = timestamp.strip()
    _check_timestamp(timestamp, now)
    if not _same(generic_signature(secret, timestamp, raw), signature.strip()):
        raise SignatureRejected("webhook signature does not match")


def stripe_signature(secret: str, timestamp: int | str, raw: bytes) -> str:
    """A v1 value as Stripe computes it: hex HMAC-SHA256 of '<t>.<raw body>' with the secret."""
    return _hmac_hex(secret, str(timestamp).encode() + b"." + raw, hashlib.sha256)


def verify_stripe_signature(
    secret: str, header: str | None, raw: bytes, now: float | None = None
) -> None:
    """Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>][,v0=...]; any v1 may match."""
    if not header:
        raise SignatureRejected("Stripe-Signature header is required")
    timestamps: list[str] = []
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamps.append(value.strip())
        elif key == "v1":
            candidates.append(value.strip())
    if len(timestamps) != 1 or not candidates:
        raise SignatureRejected("Stripe-Signature needs one t= and at least one v1= value")
    _check_timestamp(timestamps[0], now)
    expected = stripe_signature(secret, timestamps[0], raw)
    # compare against every candidate (no early exit): the time taken says nothing
    matches = [_same(expected, candidate) for candidate in candidates]
    if not any(matches):
        raise SignatureRejected("webhook signature does not match")


def paystack_signature(secret_key: str, raw: bytes) -> str:
    """x-paystack-signature: hex HMAC-SHA512 of the raw body with the secret key."""
    return _hmac_hex(secret_key, raw, hashlib.sha512)


def verify_paystack_signature(secret_key: str, header: str | None, raw: bytes) -> None:
    if not header:
        raise SignatureRejected("x-paystack-signature header is required")
    if not _same(paystack_signature(secret_key, raw), header.strip().lower()):
        raise SignatureRejected("webhook signature does not match")


def flutterwave_signature(secret_hash: str, raw: bytes) -> str:
    """flutterwave-signature: base64 HMAC-SHA256 of the raw body with the secret hash."""
    digest = hmac.new(secret_hash.encode(), raw, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_flutterwave_signature(
    secret_hash: str, verif_hash: str | None, signature: str | None, raw: bytes
) -> None:
    """The body HMAC when Flutterwave sends it; otherwise v3's verif-hash, equal to the secret."""
    if signature:
        if not _same(flutterwave_signature(secret_hash, raw), signature.strip()):
            raise SignatureRejected("webhook signature does not match")
        return
    if not verif_hash:
        raise SignatureRejected("verif-hash or flutterwave-signature header is required")
    if not _same(secret_hash, verif_hash.strip()):
        raise SignatureRejected("webhook signature does not match")
