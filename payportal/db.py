"""Engine, session factory, request.dbsession joined to request.tm, the declarative Base."""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid

import psycopg.types.json
import pydantic_core
import sqlalchemy as sa
from psycopg.rows import namedtuple_row
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from zope.sqlalchemy.datamanager import STATUS_CHANGED, ZopeStatus, join_transaction, mark_changed

# Stable constraint names, so Alembic revisions and `alembic check` agree across machines.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# environ key through which tests hand the app a connection already inside a transaction
TEST_CONNECTION_KEY = "payportal.test_connection"
# session.info key: the transaction manager driving a session made by get_tm_session
TRANSACTION_MANAGER_KEY = "payportal.transaction_manager"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_statement(
    session: Session, sql: str, params: dict, *, fetch: str | None = "one", row_factory=None
):
    """Run one statement (psycopg's %(name)s placeholders) on the session's connection straight
    through psycopg. `fetch` "one": its first row (None when it has none); "all": a list of
    its rows; None: nothing. Rows are tuples, or what `row_factory` (psycopg.rows) makes.

    For the statements of the hot paths: even Connection.exec_driver_sql builds a cursor
    description and result metadata on every execution, which for a payment's columns costs
    several times what psycopg does (a GET's lookup: ~120 us of CPU of ~240), and
    session.execute(sa.text(...)) adds the construct's cache key and the processing of every
    bound value (~80 us on initialize's 20-parameter INSERT). Still inside the session's
    transaction, and errors come out exactly as from any other statement (SQLAlchemy's
    exception, a lost connection invalidated), so retries on serialization failures and the
    503 of an unreachable database hold. Values go to psycopg unprocessed, so they must be what
    it adapts (str, int, UUID, datetime, None), and rows carry psycopg's types (a PostgreSQL
    enum as its text). Pending ORM changes are not flushed: see DriverSQL.
    """
    connection = session.connection()
    cursor = connection.connection.driver_connection.cursor(row_factory=row_factory)
    listened = connection._has_events or connection.engine._has_events
    try:
        if listened:
            # as SQLAlchemy's own execution does: cursor listeners (statement logs, tracing)
            # see these statements too, without an execution context (there is none)
            for listener in connection.dispatch.before_cursor_execute:
                sql, params = listener(connection, cursor, sql, params, None, False)
        if connection._echo:
            # SQLAlchemy's echo (sqlalchemy.engine at INFO) shows these statements too; their
            # values are not logged (customer e-mails and the like stay out of the log)
            connection._log_info(sql)
        cursor.execute(sql, params)
        if listened:
            for listener in connection.dispatch.after_cursor_execute:
                listener(connection, cursor, sql, params, None, False)
        if fetch == "one":
            return cursor.fetchone()
        return cursor.fetchall() if fetch == "all" else None
    except Exception as exc:
        connection._handle_dbapi_exception(exc, sql, params, cursor, None)
    finally:
        cursor.close()


class DriverSQL:
    """A hot path's statement, run by run_statement after flushing the session's pending
    changes (as session.execute would); rows are named tuples (attributes by column name).

    Written with sa.text()'s :name placeholders, or compiled once from a Core statement
    (`DriverSQL.compile`), whose bind parameters keep their names."""

    _PLACEHOLDER = re.compile(r"(?<![:\w]):(\w+)")

    def __init__(self, text: str):
        # psycopg's named placeholders; a literal % would need doubling, so none is allowed
        if "%" in text:
            raise ValueError("DriverSQL statements cannot contain a literal %")
        self.sql = self._PLACEHOLDER.sub(r"%(\1)s", text)

    @classmethod
    def compile(cls, statement: sa.Executable) -> DriverSQL:
        """`statement` as SQLAlchemy's psycopg dialect writes it for the driver."""
        sql = str(statement.compile(dialect=_PSYCOPG_DIALECT))
        if "POSTCOMPILE" in sql:
            # an expanding IN (...) or a literal-execute value is rendered per execution
            raise ValueError("DriverSQL cannot hold a statement rendered per execution")
        driver = cls.__new__(cls)
        driver.sql = sql
        return driver

    def run(self, session: Session, params: dict) -> None:
        session.flush()
        run_statement(session, self.sql, params, fetch=None)

    def first(self, session: Session, params: dict):
        """The first row, None when there is none."""
        session.flush()
        return run_statement(session, self.sql, params, row_factory=namedtuple_row)

    def all(self, session: Session, params: dict) -> list:
        session.flush()
        return run_statement(session, self.sql, params, fetch="all", row_factory=namedtuple_row)


_PSYCOPG_DIALECT = postgresql_psycopg.dialect()


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: sa.DateTime(timezone=True),
        uuid.UUID: sa.Uuid(),
    }


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=sa.text("gen_random_uuid()"), default=uuid.uuid4
    )


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(
        server_default=sa.func.now(), default=utcnow, nullable=False
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        server_default=sa.func.now(), default=utcnow, onupdate=utcnow, nullable=False
    )


class Audited(Timestamps):
    """Who made and last changed a row: 'merchant:<id>', 'operator:<id>', 'system', ..."""

    created_by: Mapped[str | None] = mapped_column(sa.String(120))
    updated_by: Mapped[str | None] = mapped_column(sa.String(120))


class SoftDeleted:
    deleted_at: Mapped[dt.datetime | None] = mapped_column()


MODEL_MODULES = (
    "payportal.merchants.models",
    "payportal.payment_methods.models",
    "payportal.payments.models",
    "payportal.gateways.models",
    "payportal.events.models",
    "payportal.idempotency",
    "payportal.portal.models",
)


def select_rows(session: Session, statement: sa.Executable, params: dict | None = None):
    """The rows of a SELECT of columns (no ORM entities) on the session's connection, past the
    ORM's execute machinery: ~120 µs less CPU a statement. Pending changes are flushed first,
    as session.execute would."""
    session.flush()
    return session.connection().execute(statement, params)


def load_all_models() -> sa.MetaData:
    """Import every slice's models so Base.metadata knows the whole schema."""
    import importlib

    for module in MODEL_MODULES:
        importlib.import_module(module)
    return Base.metadata


def pg_enum(enum_cls, name: str) -> sa.Enum:
    """A PostgreSQL enum type storing the StrEnum's values (not its member names)."""
    return sa.Enum(
        enum_cls,
        name=name,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 5,
    pool_timeout: int = 10,
    statement_timeout_ms: int = 0,
    read_only: bool = False,
    **kwargs,
) -> sa.Engine:
    # timestamps come back in UTC whatever the server's default, as the API writes them
    options = ["-c TimeZone=UTC"]
    if statement_timeout_ms:
        options.append(f"-c statement_timeout={statement_timeout_ms}")
    if read_only:
        # a replica session can never write, even by mistake
        options.append("-c default_transaction_read_only=on")
    connect_args = {"options": " ".join(options)}
    engine = sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        connect_args=connect_args,
        **kwargs,
    )
    ping_idle_connections(engine)
    sa.event.listen(engine, "connect", _read_json_with_pydantic_core)
    return engine


def _read_json_with_pydantic_core(dbapi_connection, record) -> None:
    """json/jsonb columns (payment metadata, event data) parsed by pydantic-core's parser: the
    same values as the json module's (the database only holds valid JSON), ~5x faster on the
    small documents a payment carries, which a page of 20 payments reads 20 of."""
    psycopg.types.json.set_json_loads(pydantic_core.from_json, dbapi_connection)


# a pooled connection idle for longer than this is pinged before it is handed out
PING_AFTER_IDLE_SECONDS = 1.0


def ping_idle_connections(engine: sa.Engine, idle_seconds: float = PING_AFTER_IDLE_SECONDS):
    """SQLAlchemy's pool_pre_ping, but only for connections that sat idle in the pool.

    pool_pre_ping sends a round trip before every checkout, so under load every request paid
    one more statement (and one more wait for its worker's interpreter lock) to learn what the
    previous request on that connection had just shown. A connection checked in less than
    `idle_seconds` ago skips the ping, as HikariCP's aliveBypassWindowMs does; one idle longer
    (after a quiet spell, a failover, a restart) is pinged, and a dead one is replaced before
    any request sees it. Should the server go away within that second, the statement fails,
    SQLAlchemy invalidates the whole pool at once and the next request reconnects — what a
    failure mid-request does anyway.
    """

    @sa.event.listens_for(engine, "checkin")
    def checked_in(dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection, record, proxy):
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return  # new, or in use a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            if not engine.dialect.is_disconnect(exc, dbapi_connection, None):
                raise
            alive = False
        if not alive:
            # the pool discards this connection and checks out another (a new one if need be)
            raise sa.exc.DisconnectionError("pooled connection found dead by its ping")


def engine_from_settings(settings) -> sa.Engine:
    return make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )


def _manager(session: Session):
    return session.info.get(TRANSACTION_MANAGER_KEY)


class RequestTransactionEvents:
    """zope.sqlalchemy's session listeners, registered once on the session factory.

    zope.sqlalchemy.register() binds one transaction manager into listeners it adds to the
    session it is given; registering them on every request's new session cost ~8 % of a
    request. These do the same work, each reading the session's own manager (pyramid_tm's
    per-request explicit manager) from session.info; sessions without one are left alone.

    Every request's transaction ends with COMMIT when the request succeeds, reads included
    (zope.sqlalchemy's default ends unwritten ones by ROLLBACK). psycopg drops every prepared
    statement of a connection on ROLLBACK and sends DEALLOCATE ALL: each GET would wipe the
    statements the write paths had prepared on that connection. A failed request still rolls
    back, and a Core write can no longer vanish silently for want of zope.sqlalchemy's
    mark_changed() (sessions join as changed).
    """

    def after_begin(self, session, transaction, connection):
        manager = _manager(session)
        if manager is not None:
            join_transaction(session, STATUS_CHANGED, manager)

    def after_attach(self, session, instance):
        manager = _manager(session)
        if manager is not None:
            join_transaction(session, STATUS_CHANGED, manager)

    def after_flush(self, session, flush_context):
        manager = _manager(session)
        if manager is not None:
            mark_changed(session, manager)

    def after_bulk_update(self, update_context):
        self.after_flush(update_context.session, None)

    def after_bulk_delete(self, delete_context):
        self.after_flush(delete_context.session, None)

    def before_commit(self, session):
        manager = _manager(session)
        if manager is None or session.in_nested_transaction():
            return
        if manager.get().status != ZopeStatus.COMMITTING:
            raise AssertionError("Transaction must be committed using the transaction manager")

    def do_orm_execute(self, execute_state):
        if execute_state.is_orm_statement and (
            execute_state.is_update or execute_state.is_insert or execute_state.is_delete
        ):
            self.after_flush(execute_state.session, None)

    def register(self, factory: sessionmaker) -> None:
        for name in (
            "after_begin",
            "after_attach",
            "after_flush",
            "after_bulk_update",
            "after_bulk_delete",
            "before_commit",
            "do_orm_execute",
        ):
            sa.event.listen(factory, name, getattr(self, name))


def get_tm_session(session_factory: sessionmaker, transaction_manager, **kwargs) -> Session:
    """A session whose commit/rollback is driven by the given transaction manager (the
    factory must carry RequestTransactionEvents, as make_session_factory's do)."""
    info = kwargs.pop("info", None) or {}
    # also lets code holding only the session (the events outbox) add after-commit hooks
    info[TRANSACTION_MANAGER_KEY] = transaction_manager
    return session_factory(info=info, **kwargs)


def make_session_factory(engine: sa.Engine, **kwargs) -> sessionmaker:
    factory = sessionmaker(bind=engine, expire_on_commit=False, **kwargs)
    RequestTransactionEvents().register(factory)
    return factory


def _request_dbsession(request) -> Session:
    connection = request.environ.get(TEST_CONNECTION_KEY)
    factory = request.registry.dbsession_factory
    if connection is not None:
        # Tests: bind to their connection; our commit releases a savepoint, theirs rolls back.
        return get_tm_session(
            factory, request.tm, bind=connection, join_transaction_mode="create_savepoint"
        )
    return get_tm_session(factory, request.tm)


def _request_read_dbsession(request) -> Session:
    """For lists and reports: a session on the read replica when one is configured (it may lag
    the primary by a moment), else the request's own session."""
    factory = request.registry.replica_session_factory
    if factory is None or TEST_CONNECTION_KEY in request.environ:
        return request.dbsession
    session = factory()
    request.add_finished_callback(lambda _request: session.close())
    return session


def includeme(config):
    settings = config.registry.payportal_settings
    engine = engine_from_settings(settings)
    config.registry.dbengine = engine
    config.registry.dbsession_factory = make_session_factory(engine)
    config.add_request_method(_request_dbsession, "dbsession", reify=True)
    config.registry.replica_engine = None
    config.registry.replica_session_factory = None
    if settings.database_replica_url:
        replica = make_engine(
            settings.database_replica_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            statement_timeout_ms=settings.db_statement_timeout_ms,
            read_only=True,
        )
        config.registry.replica_engine = replica
        config.registry.replica_session_factory = sessionmaker(bind=replica)
    config.add_request_method(_request_read_dbsession, "read_dbsession", reify=True)
    # a server forking worker processes (payportal.server) runs these in each child: pooled
    # connections opened in the parent must never be shared, so the child starts with none
    hooks = getattr(config.registry, "after_fork_hooks", None)
    if hooks is None:
        hooks = config.registry.after_fork_hooks = []
    for forked in (engine, config.registry.replica_engine):
        if forked is not None:
            hooks.append(lambda forked=forked: forked.dispose(close=False))
