"""/healthz answers while the process lives; /readyz only when the database answers and is
migrated to the code's head, with the reason when it is not."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parents[3]


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "development.ini"))
    config.attributes["database_url"] = url
    return config


def test_healthz_answers_ok_and_is_never_cached(testapp):
    response = testapp.get("/healthz")
    assert response.json == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_is_ready_on_a_migrated_database(testapp):
    response = testapp.get("/readyz")
    assert response.json == {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_is_503_when_the_database_is_unreachable(app_on):
    app = app_on("postgresql+psycopg://payportal:db-password-77@127.0.0.1:1/payportal")
    assert app.get("/healthz").json == {"status": "ok"}
    response = app.get("/readyz", status=503)
    assert response.json["status"] == "unavailable"
    assert response.json["checks"]["database"] == "unreachable: OperationalError"
    assert "db-password-77" not in response.text
    assert "127.0.0.1" not in response.text


def test_readyz_is_503_on_a_database_never_migrated(app_on, scratch_database):
    response = app_on(scratch_database()).get("/readyz", status=503)
    checks = response.json["checks"]
    assert checks["database"] == "ok"
    assert checks["migrations"].startswith("database at nothing, code expects [")
    assert checks["migrations"].endswith("run alembic upgrade head")


def test_readyz_follows_the_migrations_down_to_base_and_back(app_on, scratch_database):
    url = scratch_database()
    config = alembic_config(url)
    app = app_on(url)
    command.upgrade(config, "head")
    assert app.get("/readyz").json["status"] == "ready"
    command.downgrade(config, "base")
    response = app.get("/readyz", status=503)
    assert "database at nothing" in response.json["checks"]["migrations"]
    command.upgrade(config, "head")
    assert app.get("/readyz").json["checks"] == {"database": "ok", "migrations": "ok"}


@pytest.fixture
def failing_check(wsgi_app):
    def sqs_unreachable(registry):
        raise ConnectionError("queue down")

    checks = wsgi_app.registry.readiness_checks
    checks.append(("sqs", sqs_unreachable))
    yield
    checks.remove(("sqs", sqs_unreachable))


def test_readyz_is_503_when_a_slice_check_fails(testapp, failing_check):
    response = testapp.get("/readyz", status=503)
    assert response.json["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "sqs": "failing: ConnectionError",
    }
