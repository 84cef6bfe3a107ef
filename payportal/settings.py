"""The one typed, validated settings object: .ini values, overridden by environment variables."""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# Values shipped in development.ini. Production refuses to start with any of them.
DEV_MARKER = "dev-only"

# setting name -> (ini key, environment variable)
SOURCES: dict[str, tuple[str, str | None]] = {
    "environment": ("payportal.environment", "PAYPORTAL_ENV"),
    "database_url": ("sqlalchemy.url", "DATABASE_URL"),
    "database_replica_url": ("payportal.database_replica_url", "DATABASE_REPLICA_URL"),
    "db_pool_size": ("payportal.db_pool_size", "DB_POOL_SIZE"),
    "db_max_overflow": ("payportal.db_max_overflow", "DB_MAX_OVERFLOW"),
    "db_pool_timeout": ("payportal.db_pool_timeout", "DB_POOL_TIMEOUT"),
    "db_statement_timeout_ms": ("payportal.db_statement_timeout_ms", "DB_STATEMENT_TIMEOUT_MS"),
    "jwt_secret": ("payportal.jwt_secret", "JWT_SECRET"),
    "jwt_refresh_secret": ("payportal.jwt_refresh_secret", "JWT_REFRESH_SECRET"),
    "jwt_expires_in": ("payportal.jwt_expires_in", "JWT_EXPIRES_IN"),
    "jwt_refresh_expires_in": ("payportal.jwt_refresh_expires_in", "JWT_REFRESH_EXPIRES_IN"),
    "bcrypt_rounds": ("payportal.bcrypt_rounds", "BCRYPT_ROUNDS"),
    "password_pepper": ("payportal.password_pepper", "PASSWORD_PEPPER"),
    "encryption_key": ("payportal.encryption_key", "ENCRYPTION_KEY"),
    "webhook_secret": ("payportal.webhook_secret", "WEBHOOK_SECRET"),
    "stripe_webhook_secret": ("payportal.stripe_webhook_secret", "STRIPE_WEBHOOK_SECRET"),
    "paystack_secret_key": ("payportal.paystack_secret_key", "PAYSTACK_SECRET_KEY"),
    "flutterwave_secret_hash": ("payportal.flutterwave_secret_hash", "FLUTTERWAVE_SECRET_HASH"),
    "sqs_queue_url": ("payportal.sqs_queue_url", "SQS_QUEUE_URL"),
    "aws_region": ("payportal.aws_region", "AWS_REGION"),
    "aws_endpoint_url": ("payportal.aws_endpoint_url", "AWS_ENDPOINT_URL"),
    "publisher_enabled": ("payportal.publisher_enabled", "PAYPORTAL_PUBLISHER_ENABLED"),
    "publisher_linger_ms": ("payportal.publisher_linger_ms", "PAYPORTAL_PUBLISHER_LINGER_MS"),
    "auto_activate": ("payportal.auto_activate", "PAYPORTAL_AUTO_ACTIVATE"),
    "allow_simulation": ("payportal.allow_simulation", "PAYPORTAL_ALLOW_SIMULATION"),
    "webhook_allow_private": ("payportal.webhook_allow_private", "PAYPORTAL_WEBHOOK_ALLOW_PRIVATE"),
    "payment_ttl": ("payportal.payment_ttl", "PAYPORTAL_PAYMENT_TTL"),
    "max_payment_amount": ("payportal.max_payment_amount", "PAYPORTAL_MAX_PAYMENT_AMOUNT"),
    "platform_fee_percent": ("payportal.platform_fee_percent", "PLATFORM_FEE_PERCENT"),
    "platform_fee_fixed": ("payportal.platform_fee_fixed", "PLATFORM_FEE_FIXED"),
    "public_url": ("payportal.public_url", "PAYPORTAL_PUBLIC_URL"),
    "smtp_url": ("payportal.smtp_url", "SMTP_URL"),
    "mail_from": ("payportal.mail_from", "MAIL_FROM"),
    "mail_dir": ("payportal.mail_dir", "PAYPORTAL_MAIL_DIR"),
    "max_body_bytes": ("payportal.max_body_bytes", "PAYPORTAL_MAX_BODY_BYTES"),
    "log_format": ("payportal.log_format", "PAYPORTAL_LOG_FORMAT"),
    "sweep_interval": ("payportal.sweep_interval", "PAYPORTAL_SWEEP_INTERVAL"),
    "rollup_fold_interval": ("payportal.rollup_fold_interval", "PAYPORTAL_ROLLUP_FOLD_INTERVAL"),
    "event_retention_days": ("payportal.event_retention_days", "PAYPORTAL_EVENT_RETENTION_DAYS"),
    "cors_origins": ("payportal.cors_origins", "CORS_ORIGINS"),
    "rate_limit_per_second": ("payportal.rate_limit_per_second", "RATE_LIMIT_PER_SECOND"),
    "auth_cache_seconds": ("payportal.auth_cache_seconds", "AUTH_CACHE_SECONDS"),
    "rate_limit_burst": ("payportal.rate_limit_burst", "RATE_LIMIT_BURST"),
    "rate_limit_initialize_per_second": (
        "payportal.rate_limit_initialize_per_second",
        "RATE_LIMIT_INITIALIZE_PER_SECOND",
    ),
    "rate_limit_initialize_burst": (
        "payportal.rate_limit_initialize_burst",
        "RATE_LIMIT_INITIALIZE_BURST",
    ),
    "metrics_access": ("payportal.metrics_access", "METRICS_ACCESS"),
    "metrics_token": ("payportal.metrics_token", "METRICS_TOKEN"),
}

SECRET_SETTINGS = (
    "jwt_secret",
    "jwt_refresh_secret",
    "password_pepper",
    "webhook_secret",
    "stripe_webhook_secret",
    "paystack_secret_key",
    "flutterwave_secret_hash",
)
MIN_SECRET_BYTES = 32
ENVIRONMENTS = frozenset({"development", "test", "production"})

_DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class SettingsError(ValueError):
    """A setting is missing or unusable; the message names it."""


def parse_duration(value: str | int) -> int:
    """'3600', '60m', '1h', '7d' -> seconds."""
    if isinstance(value, int):
        return value
    match = _DURATION.match(str(value).strip())
    if not match:
        raise ValueError(f"not a duration: {value!r} (use seconds or 30m, 1h, 7d)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def parse_encryption_keys(value: str) -> list[tuple[str, bytes]]:
    """'base64key' or 'id:base64key,id:base64key' -> [(key_id, 32 bytes)]; the first encrypts."""
    keys: list[tuple[str, bytes]] = []
    for index, part in enumerate(p.strip() for p in value.split(",") if p.strip()):
        key_id, sep, encoded = part.partition(":")
        if not sep:
            key_id, encoded = f"k{index}", part
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", key_id):
            raise ValueError(f"key id {key_id!r} must be 1-32 letters, digits, '_' or '-'")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"key {key_id!r} is not valid base64") from exc
        if len(raw) != 32:
            raise ValueError(f"key {key_id!r} must decode to 32 bytes, not {len(raw)}")
        keys.append((key_id, raw))
    if not keys:
        raise ValueError("no key given")
    if len({k for k, _ in keys}) != len(keys):
        raise ValueError("key ids must be distinct")
    return keys


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: str = "development"
    database_url: str
    database_replica_url: str | None = None
    db_pool_size: int = Field(10, ge=1, le=200)
    db_max_overflow: int = Field(5, ge=0, le=200)
    db_pool_timeout: int = Field(10, ge=1)
    db_statement_timeout_ms: int = Field(15000, ge=0)
    jwt_secret: str
    jwt_refresh_secret: str
    jwt_expires_in: int = 3600
    jwt_refresh_expires_in: int = 7 * 86400
    bcrypt_rounds: int = Field(12, ge=4, le=16)
    password_pepper: str
    encryption_key: str
    webhook_secret: str | None = None
    stripe_webhook_secret: str | None = None
    paystack_secret_key: str | None = None
    flutterwave_secret_hash: str | None = None
    sqs_queue_url: str | None = None
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    publisher_enabled: bool = True
    # how long the publisher waits for more commits' events before sending less than a full
    # SendMessageBatch of ten (0 sends each commit's events at once)
    publisher_linger_ms: int = Field(25, ge=0, le=1000)
    auto_activate: bool = False
    allow_simulation: bool = False
    webhook_allow_private: bool = False
    payment_ttl: int = Field(1800, ge=60)
    max_payment_amount: int = Field(99_999_999_999, ge=1)
    platform_fee_percent: Decimal = Field(Decimal("0"), ge=0, lt=100)
    platform_fee_fixed: dict[str, int] = Field(default_factory=dict)
    public_url: str = "http://127.0.0.1:6543"
    smtp_url: str | None = None
    mail_from: str = "payportal <no-reply@payportal.local>"
    mail_dir: str = "var/mail"
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    log_format: str = "text"
    sweep_interval: int = Field(30, ge=1)
    # seconds between the relay's folds of the dashboard rollup's deltas (readers are exact
    # either way; the fewer deltas wait, the fewer rows the overview adds up)
    rollup_fold_interval: float = Field(1.0, gt=0, le=3600)
    # published, dispatched events (and their deliveries) older than this go; 0 keeps them all,
    # as the API promises by default
    event_retention_days: int = Field(0, ge=0)
    # "localhost" allows any loopback origin; "*" any origin (no credentials either way)
    cors_origins: tuple[str, ...] = ()
    rate_limit_per_second: float = Field(100, ge=0)  # 0 turns rate limiting off
    # authentication lookups remembered per process (invalidated by NOTIFY); 0 turns it off
    auth_cache_seconds: float = Field(5, ge=0, le=300)
    rate_limit_burst: int = Field(200, ge=1)
    rate_limit_initialize_per_second: float = Field(20, gt=0)
    rate_limit_initialize_burst: int = Field(40, ge=1)
    metrics_access: str = "localhost"
    metrics_token: str | None = None

    @field_validator("jwt_expires_in", "jwt_refresh_expires_in", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> int:
        return parse_duration(value)

    @field_validator(
        "publisher_enabled",
        "auto_activate",
        "allow_simulation",
        "webhook_allow_private",
        mode="before",
    )
    @classmethod
    def _bool(cls, value: Any) -> bool:
        return parse_bool(value)

    @field_validator("platform_fee_fixed", mode="before")
    @classmethod
    def _fixed_fees(cls, value: Any) -> dict[str, int]:
        # "USD:30,EUR:25" -> {"USD": 30, "EUR": 25}
        if isinstance(value, Mapping):
            return dict(value)
        fees: dict[str, int] = {}
        for part in (p.strip() for p in str(value or "").split(",") if p.strip()):
            currency, _, amount = part.partition(":")
            fees[currency.strip().upper()] = int(amount)
        return fees

    @field_validator("encryption_key")
    @classmethod
    def _encryption_key(cls, value: str) -> str:
        parse_encryption_keys(value)
        return value

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: str) -> str:
        # a typo such as "prod" must not quietly skip the production checks
        if value not in ENVIRONMENTS:
            raise ValueError(f"must be one of {', '.join(sorted(ENVIRONMENTS))}")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            return tuple(
                o.strip().rstrip("/") for o in value.replace(",", " ").split() if o.strip()
            )
        return tuple(value)

    @field_validator("metrics_access")
    @classmethod
    def _metrics_access(cls, value: str) -> str:
        if value not in {"disabled", "localhost", "token"}:
            raise ValueError("must be 'disabled', 'localhost' or 'token'")
        return value

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value not in {"text", "json"}:
            raise ValueError("must be 'text' or 'json'")
        return value

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def encryption_keys(self) -> list[tuple[str, bytes]]:
        return parse_encryption_keys(self.encryption_key)

    def check_production(self) -> None:
        """Refuse to start in production with a missing, development or short secret."""
        if not self.is_production:
            return
        for name in SECRET_SETTINGS:
            value = getattr(self, name)
            env = SOURCES[name][1]
            if not value:
                raise SettingsError(f"{env} is required in production")
            if DEV_MARKER in value:
                raise SettingsError(f"{env} still has its development value; set a real secret")
            if len(value.encode()) < MIN_SECRET_BYTES:
                raise SettingsError(f"{env} must be at least {MIN_SECRET_BYTES} bytes long")
        if self.jwt_secret == self.jwt_refresh_secret:
            raise SettingsError("JWT_SECRET and JWT_REFRESH_SECRET must differ")
        if any(DEV_MARKER.encode() in key for _kid, key in self.encryption_keys):
            raise SettingsError("ENCRYPTION_KEY still has its development value; set a real key")
        if self.auto_activate:
            raise SettingsError("PAYPORTAL_AUTO_ACTIVATE must be false in production")
        if self.allow_simulation:
            raise SettingsError("PAYPORTAL_ALLOW_SIMULATION must be false in production")
        if self.metrics_access == "token" and len((self.metrics_token or "").encode()) < 32:
            raise SettingsError("METRICS_TOKEN must be at least 32 bytes when METRICS_ACCESS=token")


def load_settings(raw: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Read the ini mapping, let environment variables override it, validate the result."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, (ini_key, env_key) in SOURCES.items():
        if env_key and environ.get(env_key, "") != "":
            values[name] = environ[env_key]
        elif raw.get(ini_key) not in (None, ""):
            values[name] = raw[ini_key]
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "settings"
        ini_key, env_key = SOURCES.get(name, (name, None))
        label = f"{env_key} ({ini_key})" if env_key else ini_key
        raise SettingsError(f"setting {label}: {first['msg']}") from None
    settings.check_production()
    return settings


def includeme(config):
    """Validate settings once at start-up and expose them as request.app_settings."""
    try:
        settings = load_settings(config.get_settings())
    except SettingsError as exc:
        # one line on the console that names the setting, not a traceback through PasteDeploy
        raise SystemExit(f"payportal: {exc}") from None
    config.registry.payportal_settings = settings
    config.add_request_method(
        lambda request: request.registry.payportal_settings, "app_settings", reify=True
    )
