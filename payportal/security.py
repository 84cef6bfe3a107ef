"""Permissions, the request Identity and which credential kind may use which permission.

No domain here: the policy that turns credentials into an Identity lives in merchants/.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from pyramid.authorization import Authenticated, Everyone


class Permission(StrEnum):
    PUBLIC = "public"
    PROFILE_READ = "profile:read"
    PROFILE_WRITE = "profile:write"
    PASSWORD_CHANGE = "password:change"
    KEYS_MANAGE = "keys:manage"
    PAYMENTS_READ = "payments:read"
    PAYMENTS_WRITE = "payments:write"
    REFUNDS_CREATE = "refunds:create"
    METHODS_READ = "payment_methods:read"
    METHODS_WRITE = "payment_methods:write"
    EVENTS_READ = "events:read"
    WEBHOOKS_MANAGE = "webhook_endpoints:manage"
    SIMULATE = "payments:simulate"
    ADMIN = "admin:access"


class CredentialKind(StrEnum):
    ACCESS_TOKEN = "access_token"  # JWT from login/register/refresh
    API_KEY = "api_key"  # sk_...
    SESSION = "session"  # dashboard cookie of a merchant
    OPERATOR_SESSION = "operator_session"  # /admin cookie of platform staff


MERCHANT_PERMISSIONS = frozenset(
    p for p in Permission if p not in {Permission.PUBLIC, Permission.ADMIN}
)

# What each credential kind may ever do; the ACL of the context still has to agree.
# An API key runs integrations: it may not manage keys, the profile or the password.
CREDENTIAL_PERMISSIONS: dict[CredentialKind, frozenset[Permission]] = {
    CredentialKind.ACCESS_TOKEN: MERCHANT_PERMISSIONS,
    CredentialKind.SESSION: MERCHANT_PERMISSIONS,
    CredentialKind.API_KEY: MERCHANT_PERMISSIONS
    - {
        Permission.KEYS_MANAGE,
        Permission.PASSWORD_CHANGE,
        Permission.PROFILE_WRITE,
    },
    CredentialKind.OPERATOR_SESSION: frozenset({Permission.ADMIN}),
}


def merchant_principal(merchant_id: uuid.UUID | str) -> str:
    return f"merchant:{merchant_id}"


OPERATOR_PRINCIPAL = "role:operator"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is asking: a merchant (by token, key or session) or an operator."""

    kind: CredentialKind
    merchant_id: uuid.UUID | None = None
    merchant_status: str | None = None
    operator_id: uuid.UUID | None = None
    credential_id: uuid.UUID | str | None = None  # api key id, session id, token jti

    @property
    def is_operator(self) -> bool:
        return self.kind is CredentialKind.OPERATOR_SESSION

    @property
    def actor(self) -> str:
        """How audit columns and transitions name this requester."""
        if self.is_operator:
            return f"operator:{self.operator_id}"
        return f"merchant:{self.merchant_id}"

    def __principals__(self) -> list[str]:
        principals = [Everyone, Authenticated]
        if self.merchant_id is not None:
            principals.append(merchant_principal(self.merchant_id))
        if self.is_operator:
            principals.append(OPERATOR_PRINCIPAL)
        return principals

    def may(self, permission: str) -> bool:
        return permission in CREDENTIAL_PERMISSIONS[self.kind]
