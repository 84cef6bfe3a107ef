"""The traversal roots (API, dashboard, admin) and the base classes slices build their trees from.

Each slice mounts its collections with `config.add_resource_child(root, name, factory)`; the
roots know nothing about payments or keys. Tenancy is carried by the tree: a merchant-scoped
collection only ever queries `WHERE merchant_id = <the requester's merchant>`, and its ACL grants
that merchant alone, so another merchant's id is simply not found.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from pyramid.authorization import ALL_PERMISSIONS, DENY_ALL, Allow, Everyone

from payportal.security import (
    MERCHANT_PERMISSIONS,
    OPERATOR_PRINCIPAL,
    Permission,
    merchant_principal,
)

ROOT_NAMES = ("api", "portal", "admin")


class Resource:
    """A traversal context: knows its parent, its name and the documented path template."""

    path_template: ClassVar[str] = ""

    def __init__(self, parent, name: str, request=None):
        self.__parent__ = parent
        self.__name__ = name
        self.request = request if request is not None else getattr(parent, "request", None)


class Root(Resource):
    face: ClassVar[str] = ""
    __acl__ = [(Allow, Everyone, Permission.PUBLIC)]

    def __init__(self, request):
        super().__init__(None, "", request)

    def __getitem__(self, name: str):
        factory = self.request.registry.resource_children[self.face].get(name)
        if factory is None:
            raise KeyError(name)
        return factory(self, name)


class ApiRoot(Root):
    face = "api"


class PortalRoot(Root):
    face = "portal"


class AdminRoot(Root):
    face = "admin"
    __acl__ = [
        (Allow, Everyone, Permission.PUBLIC),
        (Allow, OPERATOR_PRINCIPAL, ALL_PERMISSIONS),
        DENY_ALL,
    ]


def merchant_acl(merchant_id: uuid.UUID | None) -> list:
    """Grant the owning merchant its permissions; nobody else gets anything here."""
    if merchant_id is None:
        return [DENY_ALL]
    return [(Allow, merchant_principal(merchant_id), tuple(MERCHANT_PERMISSIONS)), DENY_ALL]


class MerchantCollection(Resource):
    """A collection scoped to the requesting merchant (None when nobody is signed in)."""

    def __init__(self, parent, name: str):
        super().__init__(parent, name)
        identity = self.request.identity if self.request is not None else None
        self.merchant_id: uuid.UUID | None = getattr(identity, "merchant_id", None)

    @property
    def __acl__(self):
        return merchant_acl(self.merchant_id)

    @property
    def dbsession(self):
        return self.request.dbsession


class MerchantObject(Resource):
    """One object that belongs to a merchant; `obj` is the loaded row."""

    def __init__(self, parent, name: str, obj):
        super().__init__(parent, name)
        self.obj = obj

    @property
    def __acl__(self):
        return merchant_acl(self.obj.merchant_id)


def parse_uuid(value: str) -> uuid.UUID:
    """Path segments that should be UUIDs: anything else is simply not found."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise KeyError(value) from None


def add_resource_child(config, face: str, name: str, factory) -> None:
    if face not in ROOT_NAMES:
        raise ValueError(f"unknown root {face!r}")
    children = config.registry.resource_children[face]

    def register():
        children[name] = factory

    config.action(("payportal.resource_child", face, name), register)


def includeme(config):
    config.registry.resource_children = {face: {} for face in ROOT_NAMES}
    config.add_directive("add_resource_child", add_resource_child)
    config.add_route("api", "/api/v1/*traverse", factory=ApiRoot)
    config.add_route("portal", "/dashboard/*traverse", factory=PortalRoot)
    config.add_route("admin", "/admin/*traverse", factory=AdminRoot)
