"""The benchmark's PostgreSQL: an embedded server (as `make test` starts one) or BENCH_DATABASE_URL,
its scratch databases, migrations, and pgbench runs of the very writes the endpoints make."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent
PGBENCH_DIR = Path(__file__).resolve().parent / "pgbench"
# kept between runs like `make run`'s var/postgres, so the 1,000,000-payment seed is reused
EMBEDDED_DATA = ROOT / "var" / "bench-postgres"


@dataclass
class PostgresServer:
    """Where the databases live: a SQLAlchemy URL of its maintenance database, and its handle."""

    url: str
    embedded: object | None = None

    def database_url(self, name: str) -> str:
        return sa.engine.make_url(self.url).set(database=name).render_as_string(hide_password=False)

    @property
    def postmaster_pid(self) -> int | None:
        """The server's main process, when it runs here (its CPU is then measured)."""
        return self.embedded.get_pid() if self.embedded is not None else None

    def checkpoint(self) -> bool:
        """CHECKPOINT now, so that none starts inside the measured load that follows: its
        writes, its fsyncs and the full-page images after it would land in whichever scenario
        it overlaps (max_wal_size is reached every ~30 s of writes here). Every load then starts
        from the same state. False when the role may not (a BENCH_DATABASE_URL's user without
        pg_checkpoint)."""
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("CHECKPOINT"))
            return True
        except sa.exc.DBAPIError:
            return False
        finally:
            engine.dispose()

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.cleanup()

    def describe(self) -> str:
        if self.embedded is not None:
            return f"embedded PostgreSQL (pgserver) in {EMBEDDED_DATA}"
        return "BENCH_DATABASE_URL " + sa.engine.make_url(self.url).render_as_string()


def start_postgres() -> PostgresServer:
    """BENCH_DATABASE_URL's server when given, else the embedded one (started or reused)."""
    given = os.environ.get("BENCH_DATABASE_URL")
    if given:
        return PostgresServer(sa.engine.make_url(given).set(database="postgres").render_as_string())
    from payportal.scripts.devdb import sqlalchemy_url, start_embedded_postgres

    embedded = start_embedded_postgres(EMBEDDED_DATA, cleanup_mode="stop")
    return PostgresServer(sqlalchemy_url(embedded.get_uri(), "postgres"), embedded)


def database_exists(server: PostgresServer, name: str) -> bool:
    engine = sa.create_engine(server.url)
    with engine.connect() as conn:
        found = conn.scalar(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        )
    engine.dispose()
    return bool(found)


def recreate_database(server: PostgresServer, name: str) -> str:
    """A fresh, migrated database (dropped first if an earlier run left one); returns its URL."""
    engine = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    url = server.database_url(name)
    migrate(url)
    return url


def migrate(url: str) -> None:
    config = Config(str(ROOT / "production.ini"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")


def pgbench_binary() -> str | None:
    """The machine's pgbench, else the one the pgserver package ships."""
    found = shutil.which("pgbench")
    if found:
        return found
    try:
        import pgserver
    except ImportError:
        return None
    shipped = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
    return str(shipped) if shipped.exists() else None


def libpq_arguments(url: str) -> tuple[list[str], dict[str, str]]:
    """pgbench's connection options for a SQLAlchemy URL (TCP or a pgserver socket); the
    database name comes last, as a plain argument (pgbench's -d is --debug, not the name)."""
    parsed = sa.engine.make_url(url)
    env = {}
    args = ["-U", parsed.username or "postgres"]
    host = parsed.query.get("host") or parsed.host
    if host:
        args += ["-h", host if isinstance(host, str) else host[0]]
    if parsed.port:
        args += ["-p", str(parsed.port)]
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    return [*args, parsed.database], env


@dataclass
class PgbenchResult:
    script: str
    clients: int
    seconds: int
    tps: float
    latency_ms: float
    failed: int

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def run_pgbench(
    url: str, script: str, *, clients: int, seconds: int, variables: dict[str, str | int]
) -> PgbenchResult:
    """pgbench -n -f bench/pgbench/<script>.sql at `clients` clients for `seconds` seconds."""
    binary = pgbench_binary()
    if binary is None:
        raise RuntimeError("pgbench not found: apt-get install postgresql-client")
    args, env = libpq_arguments(url)
    defines = [f"--define={name}={value}" for name, value in variables.items()]
    threads = min(clients, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as scratch:
        # pgbench runs as whoever we are, but writes nothing but its report to stdout
        result = subprocess.run(
            [
                binary,
                "-n",
                "-M",
                "prepared",
                "-c",
                str(clients),
                "-j",
                str(threads),
                "-T",
                str(seconds),
                "-f",
                str(PGBENCH_DIR / f"{script}.sql"),
                *defines,
                *args,
            ],
            capture_output=True,
            text=True,
            cwd=scratch,
            env={**os.environ, **env},
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"pgbench {script} failed: {result.stderr.strip()[-500:]}")
    out = result.stdout
    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))
    latency = float(re.search(r"latency average = ([0-9.]+) ms", out).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", out)
    return PgbenchResult(
        script, clients, seconds, tps, latency, int(failed.group(1)) if failed else 0
    )
