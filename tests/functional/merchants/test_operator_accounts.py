"""Operator accounts: sign-in (throttled on its own), duplicates, and the operator's reach."""

from __future__ import annotations

import uuid

import pytest
from merchant_http import login, register
from pyramid.authorization import ACLHelper
from pyramid.testing import DummyRequest

from payportal.errors import RateLimited
from payportal.merchants import services
from payportal.resources import AdminRoot
from payportal.security import CredentialKind, Identity, Permission
from tests.factories import DEFAULT_PASSWORD, create_operator


def test_an_operator_signs_in_with_the_right_password_only(dbsession, settings):
    operator = create_operator(dbsession, settings, email="Grace@Example.com")
    assert operator.email == "grace@example.com"
    signed_in = services.authenticate_operator(
        dbsession, settings, "GRACE@example.com", DEFAULT_PASSWORD
    )
    assert signed_in.id == operator.id
    assert signed_in.last_login_at is not None
    with pytest.raises(services.InvalidCredentials):
        services.authenticate_operator(dbsession, settings, operator.email, "not the password")
    with pytest.raises(services.InvalidCredentials):
        services.authenticate_operator(dbsession, settings, "nobody@example.com", DEFAULT_PASSWORD)


def test_a_disabled_operator_cannot_sign_in(dbsession, settings):
    operator = create_operator(dbsession, settings)
    operator.is_active = False
    dbsession.flush()
    with pytest.raises(services.InvalidCredentials):
        services.authenticate_operator(dbsession, settings, operator.email, DEFAULT_PASSWORD)


def test_operator_emails_are_unique_whatever_their_case(dbsession, settings):
    create_operator(dbsession, settings, email="ops@example.com")
    with pytest.raises(services.DuplicateAccount) as error:
        create_operator(dbsession, settings, email="OPS@example.com")
    assert error.value.status == 409
    assert error.value.details == [{"field": "email", "message": "already registered"}]


def test_operator_throttling_is_separate_from_merchant_sign_in(testapp, dbsession, settings):
    email = f"both-{uuid.uuid4().hex[:8]}@example.com"
    create_operator(dbsession, settings, email=email)
    register(testapp, email=email)
    for _ in range(5):
        with pytest.raises(services.InvalidCredentials):
            services.authenticate_operator(dbsession, settings, email, "wrong passphrase")
    with pytest.raises(RateLimited):
        services.authenticate_operator(dbsession, settings, email, DEFAULT_PASSWORD)
    login(testapp, email)  # the merchant of the same address is not locked out


def test_only_operators_reach_the_admin_tree():
    root = AdminRoot(DummyRequest())
    acl = ACLHelper()
    operator = Identity(kind=CredentialKind.OPERATOR_SESSION, operator_id=uuid.uuid4())
    merchant = Identity(kind=CredentialKind.SESSION, merchant_id=uuid.uuid4())
    assert "role:operator" in operator.__principals__()
    assert operator.may(Permission.ADMIN)
    assert acl.permits(root, operator.__principals__(), Permission.ADMIN)
    assert not merchant.may(Permission.ADMIN)
    assert not acl.permits(root, merchant.__principals__(), Permission.ADMIN)
