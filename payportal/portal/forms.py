"""HTML forms on top of the API's own pydantic schemas: the same validation, errors shown next
to the field they belong to, the user's input kept so nothing has to be typed twice."""

from __future__ import annotations

import json
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


def form_field(path: str, nested: tuple[str, ...] = ()) -> str:
    """The form input an API error path belongs to: 'card.number' -> 'number' when 'card' is
    a nested object the form shows flat, else the top-level field ('metadata.x' -> 'metadata')."""
    parts = path.split(".")
    if len(parts) > 1 and parts[0] in nested:
        return parts[1]
    return parts[0]


def errors_from_validation(exc: ValidationError, nested: tuple[str, ...] = ()) -> dict:
    errors: dict[str, str] = {}
    for detail in validation_details(exc):
        errors.setdefault(form_field(detail["field"], nested), detail["message"])
    return errors


def errors_from_domain(exc: PayportalError, nested: tuple[str, ...] = ()) -> dict:
    """A service's error: per-field details next to their fields, the message at the top."""
    errors: dict[str, str] = {GENERAL: exc.message}
    for detail in exc.details:
        field = form_field(str(detail.get("field", "")), nested)
        if field:
            errors.setdefault(field, str(detail.get("message", "")))
    return errors


def validate(model: type[BaseModel], data: dict[str, Any], nested: tuple[str, ...] = ()):
    """The API's request model filled from a form, or FormInvalid with field messages.

    Validated from JSON, as the API validates its bodies: the same strict rules either way."""
    try:
        return model.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        raise FormInvalid(errors_from_validation(exc, nested)) from None


def whole_number(field: str, text: str, *, required: bool = True) -> int | None:
    """A form's digits as an int (strict API models take no strings), or FormInvalid."""
    if not text:
        if required:
            raise FormInvalid({field: "Enter a number."})
        return None
    if not text.isdigit() or len(text) > 9:
        raise FormInvalid({field: "Enter a whole number."})
    return int(text)


def metadata_lines(field: str, text: str) -> dict[str, str]:
    """'key=value' per line -> {key: value}; the API model checks the limits."""
    metadata: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise FormInvalid({field: f"Line {number}: write key=value."})
        metadata[key.strip()] = value.strip()
    return metadata


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
