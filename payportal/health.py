"""Liveness and readiness: /healthz (the process answers), /readyz (it can do its work)."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from payportal.apiview import json_response

log = logging.getLogger(__name__)


def migration_heads() -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from payportal import PROJECT_ROOT

    config = Config()
    config.set_main_option("script_location", f"{PROJECT_ROOT}/migrations")
    return set(ScriptDirectory.from_config(config).get_heads())


def migration_revisions(connection) -> set[str]:
    """The revisions the database is at; none when it was never migrated (no version table)."""
    if connection.scalar(sa.text("SELECT to_regclass('alembic_version')")) is None:
        return set()
    return set(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def probe_response(data: dict, status: int = 200):
    response = json_response(data, status=status)
    # a cached answer would hide the moment the process stops being ready
    response.cache_control = "no-store"
    return response


@view_config(route_name="healthz", permission=NO_PERMISSION_REQUIRED)
def healthz(request):
    return probe_response({"status": "ok"})


@view_config(route_name="readyz", permission=NO_PERMISSION_REQUIRED)
def readyz(request):
    checks: dict[str, str] = {}
    ready = True
    engine = request.registry.dbengine
    try:
        with engine.connect() as connection:
            current = migration_revisions(connection)
        expected = request.registry.migration_heads
        if current == expected:
            checks["database"] = "ok"
            checks["migrations"] = "ok"
        else:
            ready = False
            checks["database"] = "ok"
            checks["migrations"] = (
                f"database at {sorted(current) or 'nothing'}, "
                f"code expects {sorted(expected)}: run alembic upgrade head"
            )
    except sa.exc.SQLAlchemyError as exc:
        ready = False
        # the driver's error class only: its message may carry the host and user
        reason = type(getattr(exc, "orig", None) or exc).__name__
        checks["database"] = f"unreachable: {reason}"
        log.warning("readyz: database unreachable: %s", reason)
    for name, check in request.registry.readiness_checks:
        try:
            checks[name] = check(request.registry)
        except Exception as exc:
            ready = False
            checks[name] = f"failing: {type(exc).__name__}"
    return probe_response(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


def includeme(config):
    config.registry.migration_heads = migration_heads()
    # slices add (name, callable(registry) -> "ok") pairs, e.g. SQS reachability
    config.registry.readiness_checks = []
    config.add_route("healthz", "/healthz")
    config.add_route("readyz", "/readyz")
