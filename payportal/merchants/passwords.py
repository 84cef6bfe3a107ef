"""Password hashing: HMAC-SHA256 pre-hash (so bytes past bcrypt's 72 count), then bcrypt."""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import cache

import bcrypt

MIN_LENGTH = 10
MAX_LENGTH = 1024


def _prehash(password: str, pepper: str) -> bytes:
    # 44 base64 bytes: under bcrypt's 72-byte limit and free of NUL bytes.
    digest = hmac.new(pepper.encode(), password.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest)


def hash_password(password: str, *, pepper: str, rounds: int) -> str:
    return bcrypt.hashpw(_prehash(password, pepper), bcrypt.gensalt(rounds)).decode()


def verify_password(password: str, password_hash: str, *, pepper: str) -> bool:
    try:
        return bcrypt.checkpw(_prehash(password, pepper), password_hash.encode())
    except ValueError:
        return False


@cache
def _dummy_hash(rounds: int) -> str:
    return bcrypt.hashpw(b"payportal-timing-equaliser", bcrypt.gensalt(rounds)).decode()


def burn_equal_time(password: str, *, pepper: str, rounds: int) -> None:
    """Spend what a real verification costs, so unknown emails answer no faster."""
    verify_password(password, _dummy_hash(rounds), pepper=pepper)


def needs_rehash(password_hash: str, *, rounds: int) -> bool:
    """True when the hash was made with another cost than BCRYPT_ROUNDS asks for now."""
    parts = password_hash.split("$")
    return len(parts) < 4 or not parts[2].isdigit() or int(parts[2]) != rounds
