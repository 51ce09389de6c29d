"""Fixtures: a database per service (SQLite files, or PostgreSQL databases when
TEST_DATABASE_URL is set), and the in-process suite built on them.

Under pytest-xdist every worker is a process of its own with its own session fixtures: its own
PostgreSQL databases (named after the worker), its own SQLite templates (in the worker's own
temporary folder) and its own share of the free ports (tests.processes)."""

from __future__ import annotations

import inspect
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from kit.migrations import upgrade
from tests.suite import Suite, build_suite

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("identity", "feed", "groups", "moderation", "records", "media")
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
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
    Tests marked ``postgres`` prove what only PostgreSQL can (row locks, advisory locks, real
    concurrency): without TEST_DATABASE_URL they are deselected, never skipped, and the
    PostgreSQL pass that CI runs must include them."""
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(pytest.mark.serial)
    if WORKER != "main":
        _same_order_in_every_worker(items)
    if TEST_DATABASE_URL:
        return
    keep = [item for item in items if item.get_closest_marker("postgres") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.get_closest_marker("postgres")])
        items[:] = keep


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
    emptied after each test."""

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

    def create(self) -> None:
        with self.admin.connect() as conn:
            for url in self.urls.values():
                conn.execute(text(f'CREATE DATABASE "{make_url(url).database}"'))
        for name, url in self.urls.items():
            upgrade(ROOT / "services" / name, url)
        self.tables = {}
        for name, url in self.urls.items():
            engine = create_engine(_sync_url(url))
            with engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables "
                        "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                    )
                )
                self.tables[name] = [r[0] for r in rows]
            engine.dispose()

    def truncate(self) -> None:
        for name, url in self.urls.items():
            engine = create_engine(_sync_url(url))
            with engine.begin() as conn:
                tables = ", ".join(f'"{t}"' for t in self.tables[name])
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            engine.dispose()

    def drop(self) -> None:
        with self.admin.connect() as conn:
            for url in self.urls.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
        self.admin.dispose()


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
            databases.truncate()
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
