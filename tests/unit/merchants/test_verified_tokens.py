"""Access tokens remembered once verified: still refused once expired, and only under the
secret that verified them."""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace

import pytest

from payportal.merchants import tokens


def settings(secret: str, lifetime: int = 900):
    return SimpleNamespace(jwt_secret=secret, jwt_refresh_secret="r" * 48, jwt_expires_in=lifetime)


def test_a_remembered_token_is_refused_once_expired():
    issuer = settings("s" * 48)
    token, issued = tokens.issue(issuer, tokens.ACCESS, uuid.uuid4())
    claims = tokens.decode_access(issuer, token)  # verified, now remembered
    assert claims.jti == issued.jti
    assert tokens.decode_access(issuer, token) is claims
    late = claims.expires_at + tokens.LEEWAY + dt.timedelta(seconds=1)
    with pytest.raises(tokens.TokenError):
        tokens.decode_access(issuer, token, now=late)


def test_a_remembered_token_is_not_accepted_under_another_secret():
    issuer = settings("s" * 48)
    token, _claims = tokens.issue(issuer, tokens.ACCESS, uuid.uuid4())
    tokens.decode_access(issuer, token)
    with pytest.raises(tokens.TokenError):
        tokens.decode_access(settings("t" * 48), token)
