"""HTML forms on top of the API's own pydantic schemas: the same validation, errors shown next
to the field they belong to, the user's input kept so nothing has to be typed twice."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from payportal.apiview import validation_details
from payportal.errors import PayportalError
from payportal.money import MoneyError, to_minor

GENERAL = "__all__"


class FormInvalid(Exception):
    """Raised by a form step with {field: message}; the view re-renders the form with them."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("form is invalid")
        self.errors = errors


def form_values(request, *names: str) -> dict[str, str]:
    """The named fields of the posted form, stripped (missing fields are '')."""
    return {name: request.POST.get(name, "").strip() for name in names}


def optional(values: dict[str, str], *names: str) -> dict[str, Any]:
    """Only the fields the user filled in: an empty input means 'not given', as in the API."""
    return {name: values[name] for name in names if values.get(name)}


def errors_from_validation(exc: ValidationError, rename: dict[str, str] | None = None) -> dict:
    errors: dict[str, str] = {}
    for detail in validation_details(exc):
        field = detail["field"].split(".")[0]
        field = (rename or {}).get(field, field)
        errors.setdefault(field, detail["message"])
    return errors


def errors_from_domain(exc: PayportalError, rename: dict[str, str] | None = None) -> dict:
    """A service's error: per-field details next to their fields, the message at the top."""
    errors: dict[str, str] = {GENERAL: exc.message}
    for detail in exc.details:
        field = str(detail.get("field", "")).split(".")[0]
        field = (rename or {}).get(field, field)
        if field:
            errors.setdefault(field, str(detail.get("message", "")))
    return errors


def validate(model: type[BaseModel], data: dict[str, Any], rename: dict[str, str] | None = None):
    """The API's request model filled from a form, or FormInvalid with field messages."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FormInvalid(errors_from_validation(exc, rename)) from None


def minor_amount(field: str, text: str, currency: str, *, required: bool = True) -> int | None:
    """An amount typed in major units ('10.50') as exact minor units (1050), or FormInvalid."""
    if not text:
        if required:
            raise FormInvalid({field: "Enter an amount."})
        return None
    cleaned = text.replace(",", "")
    try:
        amount = to_minor(cleaned, currency)
    except MoneyError as exc:
        raise FormInvalid({field: str(exc).capitalize() + "."}) from None
    if amount <= 0:
        raise FormInvalid({field: "Enter an amount greater than zero."})
    return amount
