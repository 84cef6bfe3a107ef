"""`make run` and `make test` helpers: a database when none is given, migrations, demo accounts.

    payportal-devdb serve development.ini     migrate, seed the demo accounts, run pserve with
                                              a payportal-relay and a payportal-worker beside it
    payportal-devdb migrate development.ini   only migrate (DATABASE_URL or the embedded server)

Without DATABASE_URL an embedded PostgreSQL (the pgserver package) is started with its data under
var/postgres, reused by the next run and stopped when this command stops (Ctrl-C, SIGTERM, SIGHUP).
PORT=8080 serves on another port (pserve's http_port variable) and moves the public URL with it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

DEMO_MERCHANT = ("demo@payportal.local", "demo-merchant-password")
DEMO_OPERATOR = ("operator@payportal.local", "demo-operator-password")
EMBEDDED_DB = "payportal"
# how long pserve gets to finish on its own after Ctrl-C (which reaches the whole process group)
PSERVE_STOP_GRACE = 10
# third-party notices that say nothing to someone starting payportal: pyramid imports the
# deprecated pkg_resources, pgserver finds no XDG_RUNTIME_DIR when run as root
QUIET_WARNINGS = ("pkg_resources is deprecated", "XDG_RUNTIME_DIR is not set")


# what runs beside the web server, as in a deployment: the relay (payment expiry, the dashboard
# rollup's fold, SQS when configured) and the worker (deliveries to merchants' webhook endpoints)
BESIDE = ("payportal.scripts.relay", "payportal.scripts.worker")


class StopRequested(Exception):
    """SIGTERM or SIGHUP reached this process: stop pserve, then the embedded database."""


def _raise_stop(signum, _frame):
    raise StopRequested(signal.Signals(signum).name)


def start_embedded_postgres(data_dir: Path, cleanup_mode: str = "stop"):
    """Start (or reuse) an embedded PostgreSQL; returns the pgserver handle.

    As root, pgserver runs the server as its own unprivileged 'pgserver' system user.
    """
    import pgserver

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(str(data_dir), cleanup_mode=cleanup_mode)


def sqlalchemy_url(libpq_uri: str, database: str) -> str:
    """pgserver's 'postgresql://postgres:@/postgres?host=/sock' -> psycopg URL for `database`."""
    base, _, query = libpq_uri.partition("?")
    base = base.replace("postgresql://", "postgresql+psycopg://", 1).replace(
        "postgres:@", "postgres@"
    )
    base = base.rsplit("/", 1)[0] + "/" + database
    return f"{base}?{query}" if query else base


def ensure_database(server, name: str) -> None:
    query = f"SELECT 1 FROM pg_database WHERE datname = '{name}';"  # noqa: S608 - a constant
    exists = server.psql(query)
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{name}";')


def migrate(ini: str, url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(ini)
    config.attributes["database_url"] = url
    command.upgrade(config, "head")


def seed_demo(ini: str, environ: dict[str, str]) -> None:
    """Create the demo merchant (active) and operator once; print how to sign in."""
    import sqlalchemy as sa
    from pyramid.paster import get_appsettings
    from sqlalchemy.orm import Session

    from payportal.db import load_all_models, make_engine
    from payportal.merchants.models import Merchant, MerchantStatus, MerchantType, Operator
    from payportal.merchants.passwords import hash_password
    from payportal.settings import load_settings

    load_all_models()
    settings = load_settings(get_appsettings(ini, name="main"), environ)
    if settings.is_production:
        # demo accounts have published passwords: never in a production database
        raise SystemExit(f"payportal-devdb: {ini} is a production configuration; use pserve")
    engine = make_engine(settings.database_url, pool_size=1)

    def hash_(password: str) -> str:
        return hash_password(
            password, pepper=settings.password_pepper, rounds=settings.bcrypt_rounds
        )

    with Session(engine) as session, session.begin():
        if session.scalar(sa.select(Merchant.id).where(Merchant.email == DEMO_MERCHANT[0])) is None:
            session.add(
                Merchant(
                    name="Demo Merchant",
                    email=DEMO_MERCHANT[0],
                    password_hash=hash_(DEMO_MERCHANT[1]),
                    merchant_type=MerchantType.BUSINESS,
                    business_name="Demo Shop",
                    status=MerchantStatus.ACTIVE,
                    created_by="system",
                )
            )
        if session.scalar(sa.select(Operator.id).where(Operator.email == DEMO_OPERATOR[0])) is None:
            session.add(
                Operator(
                    email=DEMO_OPERATOR[0],
                    name="Demo Operator",
                    password_hash=hash_(DEMO_OPERATOR[1]),
                )
            )
    engine.dispose()
    url = settings.public_url
    print(f"\n  payportal is starting on {url}")
    print(f"  merchant dashboard: {url}/dashboard/  {DEMO_MERCHANT[0]} / {DEMO_MERCHANT[1]}")
    print(f"  operator console:   {url}/admin/  {DEMO_OPERATOR[0]} / {DEMO_OPERATOR[1]}")
    print(f"  API reference:      {url}/api/docs\n", flush=True)


def database_url(var_dir: Path):
    """DATABASE_URL when given, else the embedded server's (started here)."""
    given = os.environ.get("DATABASE_URL")
    if given:
        return given, None
    server = start_embedded_postgres(var_dir / "postgres")
    ensure_database(server, EMBEDDED_DB)
    return sqlalchemy_url(server.get_uri(), EMBEDDED_DB), server


def serve_environ(url: str, port: str | None) -> dict[str, str]:
    environ = {**os.environ, "DATABASE_URL": url}
    environ.setdefault(
        "PYTHONWARNINGS", ",".join(f"ignore:{m}:UserWarning" for m in QUIET_WARNINGS)
    )
    if port and not environ.get("PAYPORTAL_PUBLIC_URL"):
        # links in e-mails and checkout URLs must point where the server really listens
        environ["PAYPORTAL_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    return environ


def start_beside(ini: str, environ: dict[str, str]) -> list[subprocess.Popen]:
    return [
        subprocess.Popen([sys.executable, "-m", module, ini], env=environ)  # noqa: S603 - ours
        for module in BESIDE
    ]


def stop_beside(processes: list[subprocess.Popen]) -> None:
    """SIGTERM (each finishes the batch in hand), then wait; killed if one does not stop."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=PSERVE_STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_pserve(command: list[str], environ: dict[str, str]) -> int:
    """Run pserve until it exits or this process is told to stop; 0 on a requested stop."""
    process = subprocess.Popen(command, env=environ)  # noqa: S603 - our own pserve
    try:
        return process.wait()
    except KeyboardInterrupt:
        # Ctrl-C in a terminal reached pserve as well; let it finish its shutdown first
        try:
            process.wait(timeout=PSERVE_STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait()
    except StopRequested:
        process.terminate()
        process.wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="payportal-devdb",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=["serve", "migrate"])
    parser.add_argument("ini")
    args, extra = parser.parse_known_args(argv)
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=UserWarning)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_stop)
    var_dir = Path(os.environ.get("PAYPORTAL_VAR", "var")).resolve()
    server = None
    try:
        url, server = database_url(var_dir)
        migrate(args.ini, url)
        where = "DATABASE_URL" if server is None else f"embedded PostgreSQL in {var_dir}/postgres"
        print(f"  database: {where}, migrations at head", flush=True)
        if args.action == "migrate":
            return 0
        port = os.environ.get("PORT")
        environ = serve_environ(url, port)
        seed_demo(args.ini, environ)
        pserve = [str(Path(sys.executable).with_name("pserve")), args.ini, *extra]
        if port:
            pserve.append(f"http_port={port}")
        print("  beside it: payportal-relay and payportal-worker", flush=True)
        beside = start_beside(args.ini, environ)
        try:
            return run_pserve(pserve, environ)
        finally:
            stop_beside(beside)
    except (KeyboardInterrupt, StopRequested):
        return 0
    finally:
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
