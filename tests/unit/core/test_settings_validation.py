"""Settings: .ini values, each overridden by its environment variable, and a production start-up
that refuses missing, development or short secrets with one line naming the setting."""

from __future__ import annotations

import base64
from decimal import Decimal
from pathlib import Path

import pytest
from pyramid.paster import get_appsettings

from payportal.settings import SECRET_SETTINGS, SOURCES, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[3]
KEY_B64 = base64.b64encode(bytes(range(32))).decode()

# env value -> the typed value the app sees, for every setting
SAMPLES = {
    "environment": ("test", "test"),
    "database_url": ("postgresql+psycopg://app@db.internal/pay", None),
    "database_replica_url": ("postgresql+psycopg://app@replica.internal/pay", None),
    "db_pool_size": ("25", 25),
    "db_max_overflow": ("0", 0),
    "db_pool_timeout": ("3", 3),
    "db_statement_timeout_ms": ("2500", 2500),
    "jwt_secret": ("env-access-secret-0123456789abcdef0123", None),
    "jwt_refresh_secret": ("env-refresh-secret-0123456789abcdef012", None),
    "jwt_expires_in": ("15m", 900),
    "jwt_refresh_expires_in": ("2d", 172800),
    "bcrypt_rounds": ("10", 10),
    "password_pepper": ("env-pepper-0123456789abcdef0123456789", None),
    "encryption_key": (f"k2:{KEY_B64}", None),
    "webhook_secret": ("env-generic-webhook-0123456789abcdef01", None),
    "stripe_webhook_secret": ("whsec_env0123456789abcdef0123456789", None),
    "paystack_secret_key": ("sk_live_env0123456789abcdef0123456789", None),
    "flutterwave_secret_hash": ("env-flutterwave-hash-0123456789abcdef", None),
    "sqs_queue_url": ("https://sqs.eu-west-1.amazonaws.com/123456789012/pay.fifo", None),
    "aws_region": ("eu-west-1", None),
    "aws_endpoint_url": ("http://127.0.0.1:5000", None),
    "publisher_enabled": ("false", False),
    "auto_activate": ("false", False),
    "allow_simulation": ("no", False),
    "webhook_allow_private": ("true", True),
    "payment_ttl": ("600", 600),
    "max_payment_amount": ("5000000", 5000000),
    "platform_fee_percent": ("1.5", Decimal("1.5")),
    "platform_fee_fixed": ("usd:10, ngn:5000", {"USD": 10, "NGN": 5000}),
    "public_url": ("https://pay.example.com", None),
    "smtp_url": ("smtp://mail.example.com:587", None),
    "mail_from": ("Payments <pay@example.com>", None),
    "mail_dir": ("/var/spool/payportal", None),
    "max_body_bytes": ("65536", 65536),
    "log_format": ("json", None),
    "sweep_interval": ("5", 5),
    "rollup_fold_interval": ("0.5", 0.5),
    "cors_origins": (
        "https://shop.example.com, https://admin.example.com/",
        ("https://shop.example.com", "https://admin.example.com"),
    ),
    "rate_limit_per_second": ("0", 0),
    "rate_limit_burst": ("10", 10),
    "rate_limit_initialize_per_second": ("2.5", 2.5),
    "rate_limit_initialize_burst": ("5", 5),
    "metrics_access": ("disabled", None),
    "metrics_token": ("metrics-token-0123456789abcdef0123456789", None),
}

STRONG_PRODUCTION_ENV = {
    "DATABASE_URL": "postgresql+psycopg://payportal@db.internal/payportal",
    "JWT_SECRET": "prod-access-f3a9c1e07b5d42a8b6e1c9d0f2a4b6c8",
    "JWT_REFRESH_SECRET": "prod-refresh-0b7d5e3c1a9f4e2d8c6b0a9e7d5c3b1a",
    "PASSWORD_PEPPER": "prod-pepper-6c1e9a7b5d3f4e2c0a8b6d4f2e0c9a7b",
    "ENCRYPTION_KEY": f"p1:{KEY_B64}",
    "WEBHOOK_SECRET": "prod-generic-2e4c6a8b0d1f3e5c7a9b1d3f5e7c9a0b",
    "STRIPE_WEBHOOK_SECRET": "whsec_9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "PAYSTACK_SECRET_KEY": "sk_live_5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928",
    "FLUTTERWAVE_SECRET_HASH": "prod-flw-hash-7d6c5b4a39281706f5e4d3c2b1a09f8e",
}


def ini_settings(name: str) -> dict:
    return dict(get_appsettings(str(ROOT / name), name="main"))


def production(**env) -> dict:
    environ = {**STRONG_PRODUCTION_ENV, **env}
    return {k: v for k, v in environ.items() if v is not None}


def refusal(environ: dict) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(ini_settings("production.ini"), environ)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_development_ini_works_as_it_is():
    settings = load_settings(ini_settings("development.ini"), {})
    assert settings.environment == "development"
    assert not settings.is_production
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert (settings.auto_activate, settings.allow_simulation) == (True, True)
    assert (settings.jwt_expires_in, settings.jwt_refresh_expires_in) == (3600, 7 * 86400)
    assert settings.platform_fee_fixed == {"USD": 30, "EUR": 25, "GBP": 20}
    assert all("dev-only" in getattr(settings, name) for name in SECRET_SETTINGS)


def test_every_setting_has_an_environment_variable():
    assert [name for name, (_ini, env) in SOURCES.items() if not env] == []


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_environment_variable_overrides_its_ini_value(name):
    env_value, typed = SAMPLES[name]
    _ini_key, env_key = SOURCES[name]
    settings = load_settings(ini_settings("development.ini"), {env_key: env_value})
    assert getattr(settings, name) == (env_value if typed is None else typed)


def test_an_empty_environment_variable_leaves_the_ini_value():
    settings = load_settings(ini_settings("development.ini"), {"JWT_EXPIRES_IN": ""})
    assert settings.jwt_expires_in == 3600


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"BCRYPT_ROUNDS": "lots"}, "BCRYPT_ROUNDS (payportal.bcrypt_rounds)"),
        ({"BCRYPT_ROUNDS": "31"}, "BCRYPT_ROUNDS (payportal.bcrypt_rounds)"),
        ({"JWT_EXPIRES_IN": "an hour"}, "JWT_EXPIRES_IN (payportal.jwt_expires_in)"),
        ({"ENCRYPTION_KEY": "k1:c2hvcnQ="}, "ENCRYPTION_KEY (payportal.encryption_key)"),
        ({"PAYPORTAL_AUTO_ACTIVATE": "maybe"}, "PAYPORTAL_AUTO_ACTIVATE"),
        ({"PAYPORTAL_LOG_FORMAT": "xml"}, "PAYPORTAL_LOG_FORMAT"),
        ({"PAYPORTAL_ENV": "prod"}, "PAYPORTAL_ENV (payportal.environment)"),
    ],
)
def test_an_unusable_value_stops_start_up_naming_the_setting(env, named):
    with pytest.raises(SettingsError) as caught:
        load_settings(ini_settings("development.ini"), env)
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


def test_production_ini_starts_with_real_secrets_from_the_environment():
    settings = load_settings(ini_settings("production.ini"), production())
    assert settings.is_production
    assert settings.jwt_secret == STRONG_PRODUCTION_ENV["JWT_SECRET"]
    assert (settings.auto_activate, settings.allow_simulation) == (False, False)
    assert settings.log_format == "json"
    assert settings.max_body_bytes == 1024 * 1024


def test_production_ini_holds_no_secret():
    raw = ini_settings("production.ini")
    for name in (*SECRET_SETTINGS, "encryption_key", "database_url"):
        assert SOURCES[name][0] not in raw


@pytest.mark.parametrize(
    "env_key", sorted(SOURCES[name][1] for name in (*SECRET_SETTINGS, "encryption_key"))
)
def test_production_refuses_a_missing_secret(env_key):
    assert env_key in refusal(production(**{env_key: None}))


def test_production_refuses_a_missing_database_url():
    assert "DATABASE_URL" in refusal(production(DATABASE_URL=None))


@pytest.mark.parametrize("name", SECRET_SETTINGS)
def test_production_refuses_the_development_value(name):
    env_key = SOURCES[name][1]
    dev_value = ini_settings("development.ini")[SOURCES[name][0]]
    message = refusal(production(**{env_key: dev_value}))
    assert message == f"{env_key} still has its development value; set a real secret"


def test_production_refuses_the_development_encryption_key():
    dev_key = ini_settings("development.ini")["payportal.encryption_key"]
    assert refusal(production(ENCRYPTION_KEY=dev_key)).startswith("ENCRYPTION_KEY still has")


@pytest.mark.parametrize("name", SECRET_SETTINGS)
def test_production_refuses_a_short_secret(name):
    env_key = SOURCES[name][1]
    message = refusal(production(**{env_key: "s3cr3t-but-only-31-bytes-long!!"}))
    assert message == f"{env_key} must be at least 32 bytes long"


def test_production_refuses_one_secret_for_both_token_kinds():
    same = STRONG_PRODUCTION_ENV["JWT_SECRET"]
    assert refusal(production(JWT_REFRESH_SECRET=same)) == (
        "JWT_SECRET and JWT_REFRESH_SECRET must differ"
    )


@pytest.mark.parametrize("env_key", ["PAYPORTAL_AUTO_ACTIVATE", "PAYPORTAL_ALLOW_SIMULATION"])
def test_production_refuses_development_conveniences(env_key):
    assert refusal(production(**{env_key: "true"})) == f"{env_key} must be false in production"


def test_a_development_ini_switched_to_production_is_refused():
    with pytest.raises(SettingsError) as caught:
        load_settings(ini_settings("development.ini"), {"PAYPORTAL_ENV": "production"})
    assert "still has its development value" in str(caught.value)
