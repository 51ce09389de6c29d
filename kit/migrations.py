"""Alembic plumbing shared by the services' migration environments, the launcher and the tests."""

from __future__ import annotations

import asyncio
import functools
import re
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kit.db import search_functions


def alembic_config(service_dir: Path, url: str) -> Config:
    config = Config(str(service_dir / "alembic.ini"))
    config.set_main_option("script_location", str(service_dir / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(service_dir: Path, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(service_dir, url), revision)


def head_revision(service_dir: Path) -> str | None:
    """The revision the service's migrations end at. Reading it compiles every revision file
    (about 8 ms for a service), so it is read once per folder and per state of its
    ``versions`` folder (each file's name and modification time): a revision added, removed
    or edited is seen, and an app built again in the same process (every test builds the
    suite) does not compile them again."""
    versions = service_dir / "migrations" / "versions"
    files = sorted(versions.glob("*.py")) if versions.is_dir() else []
    state = tuple((path.name, path.stat().st_mtime_ns) for path in files)
    return _head_revision(str(service_dir / "migrations"), state)


@functools.cache
def _head_revision(migrations: str, _versions: tuple[tuple[str, int], ...]) -> str | None:
    return ScriptDirectory(migrations).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return result.scalar_one_or_none()
    except SQLAlchemyError:
        return None


# Search's objects that only migrations create (decision 0034): FTS5 tables and their shadow
# tables on SQLite, generated tsvector columns and their GIN and trigram indexes on PostgreSQL.
_SEARCH_OBJECT = re.compile(r"(^|_)search(_|$)|_trigram$")


def _in_models(_object: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Whether a check compares an object: not the search objects no model declares, which
    would otherwise read as drift."""
    return not (reflected and compare_to is None and name is not None and _SEARCH_OBJECT.search(name))


def _run(connection: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=_in_models,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str, metadata: MetaData) -> None:
    engine = create_async_engine(url)
    search_functions(engine)
    async with engine.connect() as connection:
        await connection.run_sync(_run, metadata)
    await engine.dispose()


def run_env(metadata: MetaData) -> None:
    """The body of every service's ``migrations/env.py``."""
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("No database URL: set sqlalchemy.url or use `python -m kit.migrate`.")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[-1]).parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(_run_async(url, metadata))
