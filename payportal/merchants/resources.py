"""Traversal contexts of the merchants slice: /auth (named views only) and /api-keys."""

from __future__ import annotations

from pyramid.authorization import Allow, Everyone
from pyramid.httpexceptions import HTTPForbidden

from payportal.merchants.credentials import get_api_key
from payportal.resources import (
    MerchantCollection,
    MerchantObject,
    merchant_acl,
    parse_uuid,
)
from payportal.security import Permission


class AuthResource(MerchantCollection):
    """/auth: sign-up and sign-in are public; profile and password belong to the signed-in
    merchant. Every child name is a view name (login, profile, ...), never an object."""

    path_template = "/auth"

    @property
    def __acl__(self):
        return [(Allow, Everyone, Permission.PUBLIC), *merchant_acl(self.merchant_id)]

    def __getitem__(self, name: str):
        raise KeyError(name)


class ApiKeyCollection(MerchantCollection):
    path_template = "/api-keys"

    def __getitem__(self, name: str):
        key_id = parse_uuid(name)
        if self.merchant_id is None:
            # nobody signed in: ask for credentials (401) rather than answer 404
            raise HTTPForbidden()
        row = get_api_key(self.dbsession, self.merchant_id, key_id)
        if row is None:
            raise KeyError(name)
        return ApiKeyResource(self, name, row)


class ApiKeyResource(MerchantObject):
    path_template = "/api-keys/{id}"
