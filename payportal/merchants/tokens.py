"""JSON Web Tokens: HS256 only, access and refresh signed with different secrets."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
LEEWAY = dt.timedelta(seconds=30)
ACCESS = "access"
REFRESH = "refresh"


class TokenError(ValueError):
    """A token that is malformed, forged, expired, early or of the wrong type."""


@dataclass(frozen=True)
class TokenClaims:
    subject: uuid.UUID
    jti: uuid.UUID
    issued_at: dt.datetime
    expires_at: dt.datetime
    family_id: uuid.UUID | None = None
    password_stamp: int | None = None


def password_stamp(changed_at: dt.datetime) -> int:
    """Microseconds of the merchant's last password change; access tokens carry it, so a
    change invalidates every token issued before it (whole-second `iat` cannot tell)."""
    return int(changed_at.timestamp() * 1_000_000)


def _secret(settings, typ: str) -> str:
    return settings.jwt_secret if typ == ACCESS else settings.jwt_refresh_secret


def issue(
    settings,
    typ: str,
    merchant_id: uuid.UUID,
    *,
    family_id: uuid.UUID | None = None,
    password_changed_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> tuple[str, TokenClaims]:
    now = now or dt.datetime.now(dt.UTC)
    lifetime = settings.jwt_expires_in if typ == ACCESS else settings.jwt_refresh_expires_in
    claims = TokenClaims(
        subject=merchant_id,
        jti=uuid.uuid4(),
        issued_at=now,
        expires_at=now + dt.timedelta(seconds=lifetime),
        family_id=family_id,
        password_stamp=password_stamp(password_changed_at) if password_changed_at else None,
    )
    payload = {
        "sub": str(merchant_id),
        "typ": typ,
        "jti": str(claims.jti),
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
    }
    if family_id is not None:
        payload["fam"] = str(family_id)
    if claims.password_stamp is not None:
        payload["pwd"] = claims.password_stamp
    return jwt.encode(payload, _secret(settings, typ), algorithm=ALGORITHM), claims


def decode(settings, token: str, typ: str) -> TokenClaims:
    try:
        payload = jwt.decode(
            token,
            _secret(settings, typ),
            algorithms=[ALGORITHM],
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "nbf", "sub", "jti", "typ"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from None
    if payload.get("typ") != typ:
        raise TokenError(f"not an {typ} token")
    try:
        return TokenClaims(
            subject=uuid.UUID(payload["sub"]),
            jti=uuid.UUID(payload["jti"]),
            issued_at=dt.datetime.fromtimestamp(payload["iat"], dt.UTC),
            expires_at=dt.datetime.fromtimestamp(payload["exp"], dt.UTC),
            family_id=uuid.UUID(payload["fam"]) if "fam" in payload else None,
            password_stamp=int(payload["pwd"]) if "pwd" in payload else None,
        )
    except (ValueError, TypeError, KeyError):
        raise TokenError("malformed claims") from None


# Access tokens already verified by this process: a request with a token seen before costs a
# dict lookup instead of PyJWT's parsing and HMAC (~10 % of a request). Keyed by the secret
# too, so a token is only ever accepted under the secret that verified it; the expiry is
# checked again on every use.
_verified: dict[tuple[str, str], TokenClaims] = {}
_VERIFIED_MAX = 20_000


def decode_access(settings, token: str, now: dt.datetime | None = None) -> TokenClaims:
    key = (settings.jwt_secret, token)
    claims = _verified.get(key)
    if claims is None:
        claims = decode(settings, token, ACCESS)
        if len(_verified) >= _VERIFIED_MAX:
            _verified.clear()
        _verified[key] = claims
    if (now or dt.datetime.now(dt.UTC)) > claims.expires_at + LEEWAY:
        _verified.pop(key, None)
        raise TokenError("Signature has expired")
    return claims
