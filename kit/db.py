"""Async engine, sessions and the per-service model registry."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, TypeAlias

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool, PoolProxiedConnection
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import await_only

from kit import search
from kit.db_errors import unavailable_sqlstate
from kit.errors import ServiceUnavailable
from kit.timeutil import as_utc

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    search.register_sqlite(dbapi_connection)


def on_sqlite_connect(engine: AsyncEngine) -> None:
    """The pragmas and the search functions (``kit.search``) on every connection of a
    service's SQLite engine."""
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)


def search_functions(engine: AsyncEngine) -> None:
    """Only the search functions, for an engine that runs migrations (whose batch operations
    rebuild tables, which the pragmas' foreign keys would cascade into)."""
    if engine.dialect.name == "sqlite":
        event.listen(
            engine.sync_engine, "connect", lambda connection, _record: search.register_sqlite(connection)
        )


# A request waits this long for a connection (SQLAlchemy's pool_timeout, and the raw pools'),
# then gets a 503.
TIMEOUT_SECONDS = 10.0

# How a raw statement is planned: PostgreSQL's choice (``plan_cache_mode=auto``), always the
# generic plan of its prepared statement, or always one made for its values.
Plan = Literal["auto", "generic", "custom"]
# A pool of raw connections: how its statements are planned, and its own settings.
_PoolKey: TypeAlias = tuple[Plan, tuple[tuple[str, str], ...]]
RawConnection: TypeAlias = asyncpg.Connection


class Database:
    """One engine and session factory for one service's database."""

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = 10, timeout: float = TIMEOUT_SECONDS
    ) -> None:
        self.url = url
        # No ping on checkout (it is a round trip on every request): a connection the server
        # closed fails its statement, the pool then drops every connection of that age, and
        # the request gets a 503 with Retry-After (kit.db_errors). pool_recycle bounds their age.
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": False}
        if url.startswith("postgresql"):
            kwargs.update(
                poolclass=_WaitingPool,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_recycle=300,
                pool_timeout=timeout,
            )
            # JIT off for every connection (decision 0014): short statements, each of which
            # would pay tens of milliseconds of compiling once its estimate crosses
            # jit_above_cost.
            if make_url(url).get_driver_name() == "asyncpg":
                kwargs["connect_args"] = {"server_settings": SERVER_SETTINGS}
            else:
                kwargs["connect_args"] = {
                    "options": " ".join(f"-c {k}={v}" for k, v in SERVER_SETTINGS.items())
                }
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        on_sqlite_connect(self.engine)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads that need no transaction: no BEGIN and no ROLLBACK around their statements. On
        # SQLite a read begins no transaction anyway (the driver begins one before a write),
        # and switching a connection to autocommit and back at each checkout costs more than
        # the read: there it is the ordinary session.
        self.read_sessionmaker = (
            async_sessionmaker(
                self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
            )
            if self.is_postgres
            else self.sessionmaker
        )

        self._pool_size = pool_size
        self._timeout = timeout
        # Pools of asyncpg connections for ``raw_fetch`` and ``raw``, one per way of planning
        # (``Plan``) and settings, each made on first use.
        self._raw: dict[_PoolKey, asyncpg.Pool] = {}
        self._raw_lock = asyncio.Lock()

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    async def raw_fetch(self, sql: str, *args: Any, plan: Plan = "auto") -> Sequence[asyncpg.Record]:
        """PostgreSQL only: one read-only statement on asyncpg directly, for the few hot reads
        whose cost through SQLAlchemy (result processing, session, pool bookkeeping) is
        several times the database's. It runs on its own (autocommit) on a pool of its own;
        a dead connection is a 503 (the pool reconnects on the next request).

        ``plan`` (``Plan``): ``generic`` for a statement whose best plan does not depend on
        its values (PostgreSQL keeps planning one whose generic plan it estimates dearer than
        the custom ones, even when it is not); ``custom`` for one whose best plan depends on
        them entirely (after five runs PostgreSQL may settle on a generic plan)."""
        async with self.raw(plan) as connection:
            return await connection.fetch(sql, *args)  # type: ignore[no-any-return]

    @contextlib.asynccontextmanager
    async def raw(
        self, plan: Plan = "auto", settings: Mapping[str, str] | None = None
    ) -> AsyncIterator[RawConnection]:
        """PostgreSQL only: a connection of ``raw_fetch``'s pools for several read-only
        statements in a row (each on its own, autocommit), with the same 503s. ``settings``:
        PostgreSQL settings every statement of the connection runs with (set when it
        connects, on a pool of connections with these settings only), for a read whose plan
        needs its own, where a transaction's ``SET LOCAL`` would cost two round trips more."""
        key: _PoolKey = (plan, tuple(sorted(settings.items())) if settings else ())
        pool = self._raw.get(key) or await self._raw_pool(key)
        try:
            # asyncio.timeout rather than acquire's own timeout, which runs a task per call.
            async with asyncio.timeout(self._timeout):
                connection = await _acquire(pool)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            raise ServiceUnavailable("The database is unavailable; try again shortly.") from exc
        try:
            yield connection
        except Exception as exc:
            if not (isinstance(exc, _BROKEN) or unavailable_sqlstate(getattr(exc, "sqlstate", None))):
                raise
            # Connections go back without a reset, so one that broke (or whose server is
            # going away: a restart, a failover) is closed here, never handed to the next
            # request. One the server closed has already left the pool.
            with contextlib.suppress(asyncpg.InterfaceError):
                connection.terminate()
            raise ServiceUnavailable("The database is unavailable; try again shortly.") from exc
        finally:
            with contextlib.suppress(asyncpg.InterfaceError):
                await pool.release(connection, timeout=self._timeout)

    async def _raw_pool(self, key: _PoolKey) -> asyncpg.Pool:
        plan, own = key
        async with self._raw_lock:
            if key not in self._raw:
                url = make_url(self.url).set(drivername="postgresql")
                settings = dict(SERVER_SETTINGS)
                if plan != "auto":
                    settings["plan_cache_mode"] = f"force_{plan}_plan"
                settings.update(own)
                try:
                    self._raw[key] = await asyncpg.create_pool(
                        url.render_as_string(hide_password=False),
                        # None kept when idle (an idle connection holds one of the server's
                        # max_connections), and none opened before the first read.
                        min_size=0,
                        # The generic-plan pool serves the busiest reads (every home page):
                        # as many connections as the main pool, so that requests do not queue
                        # for one; the others (pages read on demand, searches) half as many.
                        # All add to the database's connection count (max_connections),
                        # beside SQLAlchemy's.
                        max_size=max(2, self._pool_size if key == ("generic", ()) else self._pool_size // 2),
                        max_inactive_connection_lifetime=300,
                        timeout=self._timeout,  # to connect
                        command_timeout=RAW_STATEMENT_TIMEOUT_SECONDS,
                        # Only read statements run here and nothing changes a connection's
                        # state, so it goes back to the pool without the default reset query
                        # (a round trip per request).
                        reset=_no_reset,
                        server_settings=settings,
                    )
                except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                    raise ServiceUnavailable("The database is unavailable; try again shortly.") from exc
            return self._raw[key]

    async def dispose(self) -> None:
        pools, self._raw = list(self._raw.values()), {}
        for pool in pools:
            await pool.close()
        await self.engine.dispose()


# Set on each of the services' PostgreSQL connections.
SERVER_SETTINGS = {"jit": "off"}
RAW_STATEMENT_TIMEOUT_SECONDS = 30.0

# A connection the server closed, whose protocol state a failure left unusable, or whose
# statement timed out.
_BROKEN = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    TimeoutError,
)


async def _no_reset(_connection: asyncpg.Connection) -> None:
    return None


# The SQLSTATE of a server with no connection left for this role or for anyone
# (max_connections, a role's CONNECTION LIMIT); and how long a pool waits before it tries
# again, doubling up to the last.
NO_CONNECTION_LEFT = "53300"
FIRST_WAIT_SECONDS, LAST_WAIT_SECONDS = 0.01, 0.2


class _WaitingPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's pool of the services, except that a checkout the server refuses a new
    connection to (``NO_CONNECTION_LEFT``) waits and tries again, until the pool's timeout,
    instead of failing the request at once (decision 0042). Each try takes a connection another request of
    this process gave back first, and opens one only when none is free: when the services'
    pools together want more connections than the server's ``max_connections`` (a burst of
    requests, or idle connections held by other processes), requests queue for the ones this
    process holds, as they do when it holds its pool's maximum. (asyncpg's errors carry the
    SQLSTATE; psycopg's, when it fails to connect, do not, and fail at once.)"""

    # It logs as the pool it extends, under "sqlalchemy" (quiet unless asked), not "kit".
    _sqla_logger_namespace = "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"

    def connect(self) -> PoolProxiedConnection:
        wait, deadline = FIRST_WAIT_SECONDS, time.monotonic() + self.timeout()
        while True:
            try:
                return super().connect()
            except Exception as exc:
                if getattr(exc, "sqlstate", None) != NO_CONNECTION_LEFT or time.monotonic() + wait > deadline:
                    raise
            await_only(asyncio.sleep(wait))  # within SQLAlchemy's greenlet: the loop runs on
            wait = min(2 * wait, LAST_WAIT_SECONDS)


async def _acquire(pool: asyncpg.Pool) -> asyncpg.Connection:
    """A connection of a raw pool, waiting as ``_WaitingPool`` does while the server has no
    connection left (the caller bounds the time); a pool whose holders are all connected
    hands back the one given back last."""
    wait = FIRST_WAIT_SECONDS
    while True:
        try:
            return await pool.acquire()
        except asyncpg.TooManyConnectionsError:
            await asyncio.sleep(wait)
            wait = min(2 * wait, LAST_WAIT_SECONDS)


def database_of(request: Request) -> Database:
    """The service's database, also for a lean route that takes no dependencies (decision 0013)."""
    database: Database = request.app.state.database
    return database


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with database_of(request).sessionmaker() as session:
        yield session


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with database_of(request).read_sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_session)]
# A session for a route that only reads: each statement on its own (autocommit), without the
# round trips of BEGIN and ROLLBACK around them.
ReadSessionDep = Annotated[AsyncSession, Depends(_read_session)]


async def _database(request: Request) -> Database:
    return database_of(request)


DatabaseDep = Annotated[Database, Depends(_database)]


async def upsert(
    session: AsyncSession, table: Any, values: dict[str, Any], keys: list[str], *, update: bool = True
) -> bool:
    """INSERT … ON CONFLICT (keys) DO UPDATE (or DO NOTHING), on PostgreSQL and SQLite alike;
    whether a row was written (False: DO NOTHING met the row already there). DO UPDATE sets
    every column of ``values`` but the keys to the value given (``excluded``)."""
    dialect = session.get_bind().dialect.name
    table = getattr(table, "__table__", table)
    statement = _upsert_statement(dialect, table, tuple(values), tuple(keys), update)
    result = await session.execute(statement, values)
    return bool(getattr(result, "rowcount", 0))


@functools.lru_cache(maxsize=256)
def _upsert_statement(
    dialect: str, table: Any, columns: tuple[str, ...], keys: tuple[str, ...], update: bool
) -> Any:
    """The statement of ``upsert``, built once for each table, set of columns and keys: the
    values are bound at each execution. Every event a service applies upserts, and a statement
    built anew pays for its construction and its cache key each time (decision 0049)."""
    from sqlalchemy.dialects import postgresql, sqlite

    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(table)
    if update:
        changes = {column: statement.excluded[column] for column in columns if column not in keys}
        return statement.on_conflict_do_update(index_elements=list(keys), set_=changes)
    return statement.on_conflict_do_nothing(index_elements=list(keys))
