"""Request and response shapes of the payment-methods API (pydantic v2)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from payportal.pagination import ListQuery, Page
from payportal.payment_methods.cards import (
    CardNumberError,
    RefusesCardNumbers,
    validate_card_number,
)
from payportal.payment_methods.models import (
    PaymentMethod,
    PaymentMethodStatus,
    PaymentMethodType,
)
from payportal.timestamps import Timestamp

T = PaymentMethodType

# Stripe's metadata limits: enough for integration ids, too small to smuggle documents in.
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
HolderName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=METADATA_KEY_MAX)]
MetadataValue = Annotated[str, StringConstraints(max_length=METADATA_VALUE_MAX)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=METADATA_MAX_KEYS)]
# statuses a merchant may set; `expired` follows from the card's date, never from a request
SettableStatus = Literal["active", "inactive", "blocked"]

STRICT_INPUT = ConfigDict(extra="forbid", strict=True)


class CardIn(RefusesCardNumbers):
    model_config = STRICT_INPUT
    unguarded_fields = frozenset({"number"})

    number: Annotated[str, StringConstraints(min_length=12, max_length=23)] = Field(
        description="12-19 digits (spaces and hyphens ignored); must pass Luhn. Never returned."
    )
    exp_month: int = Field(ge=1, le=12)
    exp_year: int = Field(ge=2000, le=2100)
    holder_name: HolderName | None = None

    @field_validator("number")
    @classmethod
    def _luhn_and_brand(cls, value: str) -> str:
        try:
            digits, _brand = validate_card_number(value)
        except CardNumberError as exc:
            raise PydanticCustomError("card_number", str(exc)) from None
        return digits


class BankAccountIn(RefusesCardNumbers):
    model_config = STRICT_INPUT
    unguarded_fields = frozenset({"account_number"})  # sealed at rest

    bank_name: HolderName
    account_number: Annotated[
        str,
        StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9 ]{4,42}$"),
    ] = Field(description="4-34 letters or digits (an IBAN fits); never returned")
    account_holder_name: HolderName

    @field_validator("account_number")
    @classmethod
    def _compact(cls, value: str) -> str:
        compact = value.replace(" ", "").upper()
        if not 4 <= len(compact) <= 34:
            raise PydanticCustomError(
                "account_number", "account number must have 4 to 34 letters or digits"
            )
        return compact


class MobileMoneyIn(RefusesCardNumbers):
    model_config = STRICT_INPUT
    unguarded_fields = frozenset({"phone_number"})  # sealed at rest

    provider: Annotated[
        str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{1,49}$")
    ] = Field(description="the mobile money operator, e.g. mpesa, mtn, airtel")
    phone_number: Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")] = Field(
        description="E.164, e.g. +254712345678; never returned"
    )


# the nested details object each type requires; the others are refused
DETAILS_FIELD = {T.CARD: "card", T.BANK_ACCOUNT: "bank_account", T.MOBILE_MONEY: "mobile_money"}
EXTERNAL_TYPES = frozenset({T.CRYPTO, T.PAYPAL, T.STRIPE})


def _for_type(message: str, method_type: PaymentMethodType) -> PydanticCustomError:
    return PydanticCustomError("field_for_type", message, {"type": str(method_type)})


class CreatePaymentMethod(RefusesCardNumbers):
    model_config = STRICT_INPUT

    name: Name
    type: PaymentMethodType
    is_default: bool | None = Field(
        None, description="omitted: becomes the default only if the merchant has none yet"
    )
    card: CardIn | None = Field(None, validate_default=True)
    bank_account: BankAccountIn | None = Field(None, validate_default=True)
    mobile_money: MobileMoneyIn | None = Field(None, validate_default=True)
    external_id: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
        | None
    ) = Field(None, validate_default=True)
    external_provider: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
        | None
    ) = Field(None, validate_default=True)
    metadata: Metadata = Field(default_factory=dict)

    @field_validator("card", "bank_account", "mobile_money")
    @classmethod
    def _details_match_type(cls, value: Any, info: ValidationInfo) -> Any:
        method_type = info.data.get("type")
        if method_type is None:  # `type` itself is invalid and already reported
            return value
        wanted = DETAILS_FIELD.get(method_type) == info.field_name
        if wanted and value is None:
            raise _for_type("required when type is {type}", method_type)
        if not wanted and value is not None:
            raise _for_type("not allowed when type is {type}", method_type)
        return value

    @field_validator("external_id", "external_provider")
    @classmethod
    def _external_for_wallets(cls, value: Any, info: ValidationInfo) -> Any:
        method_type = info.data.get("type")
        if method_type in EXTERNAL_TYPES and value is None:
            raise _for_type("required when type is {type}", method_type)
        return value


class UpdatePaymentMethod(RefusesCardNumbers):
    model_config = STRICT_INPUT

    name: Name | None = None
    status: SettableStatus | None = None
    is_default: bool | None = None
    metadata: Metadata | None = Field(None, description="replaces the whole metadata object")


class PaymentMethodListQuery(ListQuery):
    type: PaymentMethodType | None = None
    status: PaymentMethodStatus | None = Field(
        None, description="as shown: a card past its expiry month is `expired`"
    )


class PaymentMethodOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    name: str
    type: PaymentMethodType
    status: PaymentMethodStatus
    is_default: bool
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    bank_name: str | None
    provider: str | None
    external_provider: str | None
    metadata: dict[str, str]
    expires_at: Timestamp | None
    created_at: Timestamp

    @classmethod
    def from_method(cls, method: PaymentMethod) -> PaymentMethodOut:
        return cls(
            id=method.id,
            name=method.name,
            type=method.type,
            status=method.effective_status,
            is_default=method.is_default,
            brand=method.brand,
            last4=method.last4,
            exp_month=method.exp_month,
            exp_year=method.exp_year,
            bank_name=method.bank_name,
            provider=method.provider,
            external_provider=method.external_provider,
            metadata=method.metadata_ or {},
            expires_at=method.expires_at,
            created_at=method.created_at,
        )


class PaymentMethodList(Page[PaymentMethodOut]):
    """One page of payment methods, newest first."""


def payment_method_event_data(method: PaymentMethod) -> dict[str, Any]:
    """The method as events carry it: exactly what the API shows (never the sealed details)."""
    return PaymentMethodOut.from_method(method).model_dump(mode="json")
