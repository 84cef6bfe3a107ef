"""Request and response shapes of the auth and API-key endpoints (pydantic v2)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from payportal.merchants.models import MerchantStatus, MerchantType
from payportal.merchants.passwords import MAX_LENGTH, MIN_LENGTH
from payportal.payment_methods.cards import RefusesCardNumbers
from payportal.timestamps import Timestamp

Password = Annotated[str, Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)]
# a password being checked, not set: any length the hash accepts, so old ones still verify
GivenPassword = Annotated[str, Field(min_length=1, max_length=MAX_LENGTH)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ().\-]{5,40}$")]
Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Website = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=500, pattern=r"^https?://[^\s]+$")
]
BusinessId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Country = Annotated[str, StringConstraints(to_upper=True, pattern=r"^[A-Za-z]{2}$")]


def _email_address(value: str) -> str:
    # *.test addresses are accepted: integrators' test suites use them; nothing is sent to DNS
    try:
        checked = validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return checked.normalized.lower()


Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=320),
    AfterValidator(_email_address),
]
# a login may name any address: an unknown or malformed one is just a failed login
LoginEmail = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]
Token = Annotated[str, Field(min_length=1, max_length=4096)]


class StrictRequest(RefusesCardNumbers):
    model_config = ConfigDict(extra="forbid")
    # hashed or checked, never stored: a password may be any string
    unguarded_fields = frozenset(
        {"password", "current_password", "new_password", "refresh_token", "token"}
    )
    phone_fields = frozenset({"phone"})


class RegisterMerchant(StrictRequest):
    name: Name
    email: Email
    password: Password
    merchant_type: MerchantType
    business_name: Name | None = None
    business_id: BusinessId | None = None
    phone: Phone | None = None
    address: Address | None = None
    website: Website | None = None
    country: Country | None = None


class Login(StrictRequest):
    email: LoginEmail
    password: GivenPassword


class RefreshRequest(StrictRequest):
    refresh_token: Token


class ProfileUpdate(StrictRequest):
    """Only the fields sent change; null clears an optional field."""

    name: Name | None = None
    phone: Phone | None = None
    address: Address | None = None
    website: Website | None = None
    business_name: Name | None = None

    @field_validator("name", mode="before")
    @classmethod
    def _name_required(cls, value):
        if value is None:
            raise ValueError("cannot be null: every merchant has a name")
        return value


class ChangePassword(StrictRequest):
    current_password: GivenPassword
    new_password: Password


class ForgotPassword(StrictRequest):
    email: LoginEmail


class ResetPassword(StrictRequest):
    token: Annotated[str, Field(min_length=1, max_length=200)]
    new_password: Password


class CreateApiKey(StrictRequest):
    # api_keys.name is varchar(100)
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class MerchantOut(BaseModel):
    """A merchant as the API shows it: never its password hash."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    id: uuid.UUID
    name: str
    email: str
    merchant_type: MerchantType
    status: MerchantStatus
    business_name: str | None
    business_id: str | None
    phone: str | None
    address: str | None
    website: str | None
    country: str | None
    created_at: Timestamp


class TokensOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int = Field(description="Seconds until the access token expires")


class MerchantWithTokens(BaseModel):
    merchant: MerchantOut
    tokens: TokensOut


class MerchantEnvelope(BaseModel):
    merchant: MerchantOut


class TokensEnvelope(BaseModel):
    tokens: TokensOut


class ApiKeyOut(BaseModel):
    """An API key as lists show it: its prefix, never the key or its digest."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    created_at: Timestamp
    last_used_at: Timestamp | None


class CreatedApiKey(BaseModel):
    """The one response that ever carries the key itself."""

    id: uuid.UUID
    name: str
    prefix: str
    key: str = Field(description="The secret key: shown this once, store it now")
    created_at: Timestamp
