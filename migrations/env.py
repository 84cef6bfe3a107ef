"""Alembic environment: the database URL comes from payportal's settings (ini + environment)."""

from alembic import context
from sqlalchemy import engine_from_config, pool, text

from payportal.db import load_all_models
from payportal.settings import load_settings

config = context.config
target_metadata = load_all_models()


def database_url() -> str:
    # An explicit URL (tests, scripts) wins; else the app's own settings, env vars included.
    explicit = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if explicit:
        return explicit
    app_settings = config.get_section("app:main") or {}
    return load_settings(app_settings).database_url


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(), target_metadata=target_metadata, literal_binds=True, compare_type=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = engine_from_config(
        {"sqlalchemy.url": database_url()}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as connection:
        _run(connection)


def _run(connection) -> None:
    # Never wait behind a long lock during a deploy: fail fast and retry the deploy instead.
    connection.execute(text("SET lock_timeout = '10s'"))
    connection.commit()  # else the SET's implicit transaction swallows the migration
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
