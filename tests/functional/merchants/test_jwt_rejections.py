"""Access and refresh JWTs that must be refused: forged, altered, expired, early, mistyped."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import jwt
import pytest
from merchant_http import refresh

from payportal.merchants import tokens
from tests.factories import bearer, create_merchant

PROFILE = "/api/v1/auth/profile"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture
def merchant(dbsession, settings):
    return create_merchant(dbsession, settings)


def claims_for(merchant, typ="access", **overrides) -> dict:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims = {
        "sub": str(merchant.id),
        "typ": typ,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "pwd": tokens.password_stamp(merchant.password_changed_at),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def access_with(settings, merchant, secret=None, algorithm="HS256", **overrides) -> str:
    return jwt.encode(
        claims_for(merchant, **overrides), secret or settings.jwt_secret, algorithm=algorithm
    )


def assert_refused(testapp, token: str):
    r = testapp.get(PROFILE, headers=bearer(token), status=401)
    assert r.json["error"]["type"] == "authentication_error"


def test_a_well_formed_access_token_is_accepted(testapp, settings, merchant):
    # the baseline every rejection below differs from in exactly one way
    testapp.get(PROFILE, headers=bearer(access_with(settings, merchant)))


def test_alg_none_is_refused(testapp, merchant):
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims_for(merchant))}."
    assert_refused(testapp, token)


# the forger's key is shorter than PyJWT likes for these algorithms: that is the point
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_another_algorithm_is_refused_even_with_the_right_secret(
    testapp, settings, merchant, algorithm
):
    assert_refused(testapp, access_with(settings, merchant, algorithm=algorithm))


def test_a_tampered_payload_is_refused(testapp, dbsession, settings, merchant):
    victim = create_merchant(dbsession, settings)
    header, _payload, signature = access_with(settings, merchant).split(".")
    forged = _b64(claims_for(victim))
    assert_refused(testapp, f"{header}.{forged}.{signature}")


def test_an_expired_token_is_refused_beyond_the_leeway(testapp, settings, merchant):
    now = int(dt.datetime.now(dt.UTC).timestamp())
    assert_refused(
        testapp, access_with(settings, merchant, iat=now - 4000, nbf=now - 4000, exp=now - 61)
    )
    # within the (at most 60 s) leeway, clock skew between servers is forgiven
    testapp.get(
        PROFILE,
        headers=bearer(
            access_with(settings, merchant, iat=now - 4000, nbf=now - 4000, exp=now - 10)
        ),
    )


def test_a_token_not_yet_valid_is_refused(testapp, settings, merchant):
    now = int(dt.datetime.now(dt.UTC).timestamp())
    assert_refused(testapp, access_with(settings, merchant, nbf=now + 120, iat=now + 120))


def test_a_refresh_token_is_not_an_access_token(testapp, settings, merchant):
    refresh_token, _ = tokens.issue(settings, tokens.REFRESH, merchant.id, family_id=uuid.uuid4())
    assert_refused(testapp, refresh_token)
    # even signed with the access secret, typ=refresh is not an access token
    assert_refused(testapp, access_with(settings, merchant, typ="refresh"))


def test_an_access_token_is_not_a_refresh_token(testapp, settings, merchant):
    refresh(testapp, access_with(settings, merchant), status=401)
    # nor is an access-typed token signed with the refresh secret
    forged = jwt.encode(
        claims_for(merchant, typ="access", fam=str(uuid.uuid4())),
        settings.jwt_refresh_secret,
        algorithm="HS256",
    )
    refresh(testapp, forged, status=401)


def test_a_token_signed_with_the_other_secret_is_refused(testapp, settings, merchant):
    assert_refused(testapp, access_with(settings, merchant, secret=settings.jwt_refresh_secret))
    assert_refused(testapp, access_with(settings, merchant, secret="x" * 48))


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "sub", "jti", "typ", "pwd"])
def test_a_token_missing_a_claim_is_refused(testapp, settings, merchant, claim):
    assert_refused(testapp, access_with(settings, merchant, **{claim: None}))


def test_a_token_for_an_unknown_merchant_is_refused(testapp, settings, merchant):
    assert_refused(testapp, access_with(settings, merchant, sub=str(uuid.uuid4())))


def test_malformed_authorization_headers_are_refused(testapp):
    for header in ("Bearer", "Bearer ", "Basic abc", "Bearer a.b.c", "Bearer sk_unknown"):
        testapp.get(PROFILE, headers={"Authorization": header}, status=401)
