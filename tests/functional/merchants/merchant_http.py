"""Small HTTP helpers for the merchants tests: register, sign in, unique emails."""

from __future__ import annotations

import time
import uuid

PASSWORD = "a long and private passphrase"


def unique_email(label: str = "merchant") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}@example.com"


def register(app, *, status: int | str = 201, **fields):
    body = {
        "name": "Ada's Books",
        "email": unique_email(),
        "password": PASSWORD,
        "merchant_type": "business",
        **fields,
    }
    return app.post_json("/api/v1/auth/register", body, status=status)


def login(app, email: str, password: str = PASSWORD, *, status: int | str = 200):
    return app.post_json(
        "/api/v1/auth/login", {"email": email, "password": password}, status=status
    )


def refresh(app, refresh_token: str, *, status: int | str = 200):
    return app.post_json("/api/v1/auth/refresh", {"refresh_token": refresh_token}, status=status)


def wait_until(predicate, timeout: float = 5.0) -> bool:
    """Poll for what a background thread (mail delivery) does; True once it happened."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
