"""Fixtures: a database per service (SQLite files, or PostgreSQL databases when
TEST_DATABASE_URL is set), and the in-process suite built on them.

Under pytest-xdist every worker is a process of its own with its own session fixtures: its own
PostgreSQL databases (named after the worker), its own SQLite templates (in the worker's own
temporary folder) and its own share of the free ports (tests.processes)."""

from __future__ import annotations

import functools
import graphlib
import inspect
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Row, TextClause, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from kit.migrations import upgrade
from tests.suite import Suite, build_suite

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("identity", "feed", "groups", "moderation", "records", "media")
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
# The fixtures through which a test reaches a service database (``suite`` and every fixture
# built on it request ``database_urls``).
DATABASE_FIXTURES = frozenset({"database_urls", "postgres"})
# The pytest-xdist worker this process is ("gw0", "gw1"…; "main" without xdist).
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Every ``async def`` test runs on anyio's asyncio backend, without a marker on each."""
    if name.startswith("test") and inspect.iscoroutinefunction(obj):
        pytest.mark.anyio(obj)


def pytest_report_header() -> str:
    return f"database backend: {'postgresql' if TEST_DATABASE_URL else 'sqlite'}"


@pytest.hookimpl(tryfirst=True)  # before ``-m`` selects: the markers added here count
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every ``slow`` test is ``serial`` (`make test` runs those alone, after the parallel run).
    Every test that uses a service database (the fixtures below), is marked ``postgres`` or is
    in a file that reads TEST_DATABASE_URL itself is marked ``database``: the PostgreSQL pass
    (`make test-postgres`) runs those, and not again the tests that never reach a database,
    whose result the backend cannot change (decision 0047).
    Tests marked ``postgres`` prove what only PostgreSQL can (row locks, advisory locks, real
    concurrency): without TEST_DATABASE_URL they are deselected, never skipped, and the
    PostgreSQL pass that CI runs must include them."""
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(pytest.mark.serial)
        if (
            item.get_closest_marker("postgres") is not None
            or not DATABASE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
            or _reads_the_database_url(item.path)
        ):
            item.add_marker(pytest.mark.database)
    _files_that_start_processes_first(items)
    if WORKER != "main":
        _same_order_in_every_worker(items)
    if TEST_DATABASE_URL:
        return
    keep = [item for item in items if item.get_closest_marker("postgres") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.get_closest_marker("postgres")])
        items[:] = keep


@functools.cache
def _reads_the_database_url(path: Path) -> bool:
    return path.suffix == ".py" and "TEST_DATABASE_URL" in path.read_text()


def _files_that_start_processes_first(items: list[pytest.Item]) -> None:
    """The files with a test that starts the real processes (marker ``e2e``) go first, in their
    order, and the others after them. They are the longest (a minute or two each, mostly
    waiting): with ``--dist loadfile`` one of them handed out last would keep its worker busy
    long after the other has finished, while handed out first they overlap, and the short files
    fill in the end. The order is the same in every process, as pytest-xdist needs."""
    starts_processes = {item.path for item in items if item.get_closest_marker("e2e") is not None}
    items.sort(key=lambda item: item.path not in starts_processes)


def _same_order_in_every_worker(items: list[pytest.Item]) -> None:
    """pytest-xdist needs every worker to collect the same tests in the same order. A test
    parametrized over an unordered collection (a set; the mappers of a SQLAlchemy registry)
    gets its cases in an order of its own in each process: each test function's cases are put
    in the order of their ids, in the places its cases held. (The ids are the same in every
    process, and with ``--dist loadfile`` one worker runs all of a file's cases, its own.)"""
    places: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        places.setdefault(item.nodeid.partition("[")[0], []).append(index)
    for indexes in places.values():
        ordered = sorted((items[i] for i in indexes), key=lambda item: item.nodeid)
        for index, item in zip(indexes, ordered, strict=True):
            items[index] = item


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _sync_url(url: str) -> str:
    return url.replace("+asyncpg", "+psycopg")


class PostgresDatabases:
    """One database per service for this test run (and pytest-xdist worker), migrated once,
    emptied after each test.

    The databases commit without waiting for the disk (``synchronous_commit = off``): a server
    crash could lose the last commits, which no test makes happen, and nothing a test proves
    about transactions changes. Emptying costs little more than a query per database: one
    connection per database for the whole run, and only the tables a test wrote to (rows left,
    or a sequence moved) are emptied, by ``DELETE`` in an order that deletes a table's
    referencing rows before it, and their sequences set back to their start. ``TRUNCATE``
    gives each table new files, about 13 ms a database for a test's few rows where ``DELETE``
    takes a fraction of one; it stays the way out for a database whose deletes fail (a cycle
    of references, a rule a delete breaks)."""

    def __init__(self, base_url: str) -> None:
        self.base = make_url(base_url)
        self.run_id = f"{WORKER}_{uuid.uuid4().hex[:8]}"
        self.urls = {
            name: self.base.set(database=f"gs_test_{self.run_id}_{name}").render_as_string(
                hide_password=False
            )
            for name in SERVICES
        }
        self.admin = create_engine(
            _sync_url(self.base.render_as_string(hide_password=False)), isolation_level="AUTOCOMMIT"
        )
        self.engines: dict[str, Engine] = {}
        self.tables: dict[str, list[str]] = {}
        self._written: dict[str, TextClause] = {}
        # Each database's tables, every one after the tables that reference it (None: a cycle).
        self._order: dict[str, list[str] | None] = {}

    def create(self) -> None:
        with self.admin.connect() as conn:
            for url in self.urls.values():
                database = make_url(url).database
                conn.execute(text(f'CREATE DATABASE "{database}"'))
                conn.execute(text(f'ALTER DATABASE "{database}" SET synchronous_commit = off'))
        for name, url in self.urls.items():
            upgrade(ROOT / "services" / name, url)
        for name, url in self.urls.items():
            # pre-ping: a test may terminate every connection to its database
            engine = create_engine(_sync_url(url), pool_size=1, pool_pre_ping=True)
            self.engines[name] = engine
            with engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables "
                        "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                    )
                )
                self.tables[name] = [r[0] for r in rows]
                references = conn.execute(_REFERENCES).all()
            self._written[name] = _written_tables(self.tables[name])
            self._order[name] = _referencing_first(self.tables[name], references)

    def empty(self) -> None:
        """Empties what the test wrote to: by ``DELETE`` where it can, else by ``TRUNCATE``."""
        for name, engine in self.engines.items():
            with engine.connect() as conn:
                with conn.begin():
                    written = {row[0] for row in conn.execute(self._written[name])}
                if written and not self._deleted(conn, name, written):
                    tables = ", ".join(f'"{t}"' for t in written)
                    with conn.begin():
                        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))

    def _deleted(self, conn: Connection, name: str, written: set[str]) -> bool:
        """Deletes the rows of ``written``, referencing tables first, and restarts the moved
        sequences; False, with nothing changed, when a delete fails or references form a cycle."""
        order = self._order[name]
        if order is None:
            return False
        try:
            with conn.begin():
                for table in order:
                    if table in written:
                        conn.execute(text(f'DELETE FROM "{table}"'))  # noqa: S608 (pg_tables' names)
                conn.execute(_RESTART_SEQUENCES)
        except DBAPIError:
            return False  # the transaction rolled back
        return True

    def drop(self) -> None:
        for engine in self.engines.values():
            engine.dispose()
        with self.admin.connect() as conn:
            for url in self.urls.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
        self.admin.dispose()


# Which table references which (foreign keys of the public schema; a table's reference to
# itself left out: one DELETE takes both ends).
_REFERENCES = text(
    "SELECT DISTINCT child.relname::text, parent.relname::text FROM pg_constraint AS fk "
    "JOIN pg_class AS child ON child.oid = fk.conrelid "
    "JOIN pg_class AS parent ON parent.oid = fk.confrelid "
    "JOIN pg_namespace AS ns ON ns.oid = child.relnamespace "
    "WHERE fk.contype = 'f' AND ns.nspname = 'public' AND fk.conrelid <> fk.confrelid"
)
# Every sequence a test moved, back to where it starts (as TRUNCATE ... RESTART IDENTITY).
_RESTART_SEQUENCES = text(
    "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, start_value, false) "
    "FROM pg_sequences WHERE schemaname = 'public' AND last_value IS NOT NULL"
)


def _referencing_first(tables: list[str], references: Sequence[Row[Any]]) -> list[str] | None:
    """``tables`` ordered so that a table comes after every table that references it; None if
    references go round in a cycle."""
    referenced_by: dict[str, set[str]] = {table: set() for table in tables}
    for child, parent in references:
        if parent in referenced_by and child in referenced_by:
            referenced_by[parent].add(child)
    try:
        return list(graphlib.TopologicalSorter(referenced_by).static_order())
    except graphlib.CycleError:
        return None


def _written_tables(tables: list[str]) -> TextClause:
    """The query naming those of ``tables`` a test wrote to: a row left, or a sequence the table
    owns moved on (by rows inserted and then deleted or rolled back), which TRUNCATE ...
    RESTART IDENTITY puts back."""
    exists = [f"SELECT '{t}' WHERE EXISTS (SELECT FROM \"{t}\")" for t in tables]  # noqa: S608 (pg_tables' names)
    rows = " UNION ".join(exists)
    moved = (
        "SELECT owner.relname::text FROM pg_sequences AS seq "
        "JOIN pg_depend AS dep "
        "ON dep.objid = format('%I.%I', seq.schemaname, seq.sequencename)::regclass "
        "AND dep.classid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i') "
        "JOIN pg_class AS owner ON owner.oid = dep.refobjid "
        "WHERE seq.schemaname = 'public' AND seq.last_value IS NOT NULL"
    )
    return text(f"{rows} UNION {moved}" if rows else moved)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases | None]:
    if not TEST_DATABASE_URL:
        yield None
        return
    databases = PostgresDatabases(TEST_DATABASE_URL)
    databases.create()
    try:
        yield databases
    finally:
        databases.drop()


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each service's SQLite schema, migrated once per run (per worker) and copied for every
    test."""
    folder = tmp_path_factory.mktemp("templates")
    paths = {}
    for name in SERVICES:
        path = folder / f"{name}.db"
        upgrade(ROOT / "services" / name, f"sqlite+aiosqlite:///{path}")
        paths[name] = path
    return paths


@pytest.fixture
def database_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    databases: PostgresDatabases | None = request.getfixturevalue("postgres")
    if databases is not None:
        try:
            yield databases.urls
        finally:
            databases.empty()
        return
    templates: dict[str, Path] = request.getfixturevalue("sqlite_templates")
    urls = {}
    for name, template in templates.items():
        path = tmp_path / f"{name}.db"
        shutil.copyfile(template, path)
        urls[name] = f"sqlite+aiosqlite:///{path}"
    yield urls


@pytest.fixture
async def suite(database_urls: dict[str, str]) -> AsyncIterator[Suite]:
    async with build_suite(database_urls) as built:
        yield built
