"""The search migration (``d23fe0000001``): the tables it leaves match feed's models on either
database (the search column and its index included; SQLite's FTS5 tables and triggers are the
migration's own, outside the models), and the posts and comments written before it are found
after it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from kit.migrations import upgrade
from services.feed.models import FeedModel

FEED = Path(__file__).resolve().parents[2] / "services" / "feed"
BEFORE = "c25f18d0e001"
FTS_TABLES = ("post_search", "comment_search")


def _sync(url: str) -> str:
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def _not_fts5(name: str | None, type_: str, _parent: Any) -> bool:
    """SQLite's FTS5 tables (and their shadow tables) are the migration's, not the models'."""
    return not (type_ == "table" and name is not None and name.startswith(FTS_TABLES))


def _differences(url: str) -> list[Any]:
    engine = create_engine(_sync(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_name": _not_fts5}
            )
            return list(compare_metadata(context, FeedModel.metadata))
    finally:
        engine.dispose()


def test_the_migrated_tables_match_the_models(database_urls):
    assert _differences(database_urls["feed"]) == []


def test_sqlite_keeps_fts5_tables_by_triggers(database_urls):
    url = database_urls["feed"]
    if not url.startswith("sqlite"):
        return
    engine = create_engine(_sync(url))
    try:
        with engine.connect() as connection:
            names = {
                (row.type, row.name)
                for row in connection.execute(
                    text("SELECT type, name FROM sqlite_master WHERE name LIKE '%search%'")
                )
            }
    finally:
        engine.dispose()
    for table in ("post", "comment"):
        assert ("table", f"{table}_search") in names
        for trigger in ("insert", "update", "delete"):
            assert ("trigger", f"{table}_search_{trigger}") in names


def _row(connection: Any, table: str, body: str, lang: str | None = None) -> uuid.UUID:
    """A post, or a comment on a post, as the release before the migration wrote them."""
    row_id = uuid.uuid4()
    sqlite = connection.dialect.name == "sqlite"
    key = row_id.hex if sqlite else row_id
    if table == "post":
        connection.execute(
            text(
                "INSERT INTO post (id, author_id, context, audience, body, mentions, tags, links, "
                "like_count, celebrate_count, support_count, insightful_count, curious_count, "
                "comment_count, created_at, updated_at) VALUES (:id, :author, 'professional', "
                "'organisation', :body, '[]', '[]', '[]', 0, 0, 0, 0, 0, 0, :now, :now)"
            ),
            {"id": key, "author": key, "body": body, "now": "2026-01-01 00:00:00"},
        )
    else:
        connection.execute(
            text(
                "INSERT INTO comment (id, post_id, author_id, body, mentions, reply_count, created_at, "
                "updated_at) VALUES (:id, :id, :id, :body, '[]', 0, :now, :now)"
            ),
            {"id": key, "body": body, "now": "2026-01-01 00:00:00"},
        )
    return row_id


def _found(connection: Any, table: str, word: str) -> int:
    """How many rows of ``table`` (one of this file's own names) the index finds by ``word``."""
    if connection.dialect.name == "sqlite":
        statement = f"SELECT count(*) FROM {table}_search WHERE {table}_search MATCH :match"  # noqa: S608
        return int(connection.execute(text(statement), {"match": f'stems : "{word}"'}).scalar())
    statement = f"SELECT count(*) FROM {table} WHERE search @@ plainto_tsquery('search_en', :word)"  # noqa: S608
    return int(connection.execute(text(statement), {"word": word}).scalar())


def _migrated_twice(url: str) -> None:
    """Up to the release before, rows written, then up to head: the rows are indexed."""
    upgrade(FEED, url, BEFORE)
    engine = create_engine(_sync(url))
    try:
        with engine.begin() as connection:
            _row(connection, "post", "We are planning the move")
            _row(connection, "comment", "These comments are about the planning")
        upgrade(FEED, url)
        with engine.begin() as connection:
            assert _found(connection, "post", "plan") == 1
            assert _found(connection, "comment", "plan") == 1
            assert _found(connection, "post", "zeppelin") == 0
    finally:
        engine.dispose()


def test_rows_written_before_the_migration_are_indexed_by_it(tmp_path):
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        _migrated_twice(f"sqlite+aiosqlite:///{tmp_path / 'feed.db'}")
        return
    name = f"gs_test_search_migration_{uuid.uuid4().hex[:8]}"
    admin = create_engine(_sync(url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            _migrated_twice(make_url(url).set(database=name).render_as_string(hide_password=False))
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
