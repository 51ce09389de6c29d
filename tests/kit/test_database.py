"""The database layer's own rules: reads without a transaction, and a database that drops its
connections (a restart, a failover) costs at most a 503, never a 500."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from kit.db import Database
from kit.errors import ServiceUnavailable, install_error_handlers
from tests.helpers import auth, person


@pytest.mark.postgres
async def test_a_read_session_runs_each_statement_on_its_own(suite):
    """In a transaction, now() stays at the transaction's start; statements on their own each
    have their own now()."""
    database = suite.feed.state.database

    async def two_nows(session) -> tuple[object, object]:
        first = (await session.execute(text("SELECT now()"))).scalar()
        await session.execute(text("SELECT pg_sleep(0.01)"))
        return first, (await session.execute(text("SELECT now()"))).scalar()

    async with database.read_sessionmaker() as session:
        first, second = await two_nows(session)
        assert first != second
    async with database.sessionmaker() as session:
        first, second = await two_nows(session)
        assert first == second


@pytest.mark.postgres
async def test_connections_the_database_closed_cost_a_503_then_heal(suite):
    token, persona_id = await person(suite.client, "ada")
    await suite.deliver()
    url = f"/api/v1/personas/{persona_id}"
    assert (await suite.client.get(url, headers=auth(token))).status_code == 200
    database = suite.identity.state.database
    async with database.engine.connect() as conn:
        identity_db = (await conn.execute(text("SELECT current_database()"))).scalar()
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": identity_db},
        )
    statuses = [(await suite.client.get(url, headers=auth(token))).status_code for _ in range(3)]
    assert 500 not in statuses, statuses
    assert statuses[-1] == 200, statuses


@pytest.mark.postgres
async def test_raw_reads_whose_connections_the_database_closed_cost_a_503_then_heal(suite):
    """The home timeline reads on asyncpg directly (``Database.raw_fetch``), on a pool of its
    own: a killed connection is the same 503 with Retry-After, and the next request works."""
    token, _ = await person(suite.client, "ada")
    await suite.deliver()
    home = "/api/v1/timelines/home"
    assert (await suite.client.get(home, headers=auth(token))).status_code == 200
    database = suite.feed.state.database
    async with database.engine.connect() as conn:
        feed_db = (await conn.execute(text("SELECT current_database()"))).scalar()
        killed = (
            await conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": feed_db},
            )
        ).scalar()
    assert killed, "the raw pool held no connection to kill"
    answers = [await suite.client.get(home, headers=auth(token)) for _ in range(3)]
    statuses = [a.status_code for a in answers]
    assert 500 not in statuses, statuses
    assert statuses[-1] == 200, statuses
    for answer in answers:
        if answer.status_code == 503:
            assert answer.headers["retry-after"] and answer.json()["status"] == 503


async def test_raw_reads_on_an_unreachable_database_are_503():
    database = Database("postgresql+asyncpg://postgres@127.0.0.1:9/nowhere")
    try:
        with pytest.raises(ServiceUnavailable):
            await database.raw_fetch("SELECT 1")
    finally:
        await database.dispose()


@contextlib.asynccontextmanager
async def _role_limited_to(name: str, connections: int, **options: Any) -> AsyncIterator[Database]:
    """A database of a role the server gives at most ``connections`` connections: a server at
    its max_connections, for that role (superusers are exempt from limits)."""
    base = make_url(os.environ["TEST_DATABASE_URL"])
    admin = Database(base.render_as_string(hide_password=False))

    async def run(statement: str) -> None:
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))

    await run(f"DROP ROLE IF EXISTS {name}")
    await run(f"CREATE ROLE {name} LOGIN CONNECTION LIMIT {connections}")
    limited = Database(base.set(username=name).render_as_string(hide_password=False), **options)
    try:
        yield limited
    finally:
        await limited.dispose()
        await run(f"DROP ROLE IF EXISTS {name}")
        await admin.dispose()


@pytest.mark.postgres
async def test_a_database_with_no_connection_left_is_a_503_not_a_500():
    """A "too many connections" (SQLSTATE 53300) is the database being unavailable, on the
    SQLAlchemy path and the raw one alike. A role limited to no connection at all stands in
    for a server at max_connections. Waiting for a connection (decision 0042) ends in the 503
    after the timeout."""
    async with _role_limited_to("gs_no_connections", 0, timeout=0.5) as limited:
        await _answers_503(limited)


async def _answers_503(limited: Database) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/orm")
    async def orm() -> None:
        async with limited.sessionmaker() as session:
            await session.execute(text("SELECT 1"))

    @app.get("/raw")
    async def raw() -> None:
        await limited.raw_fetch("SELECT 1")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path in ("/orm", "/raw"):
            answer = await client.get(path)
            assert answer.status_code == 503, (path, answer.text)
            assert answer.headers["retry-after"]
            assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.postgres
async def test_a_request_the_server_has_no_connection_for_waits_for_one_given_back():
    """When the server refuses a new connection (SQLSTATE 53300: max_connections, here a
    role's CONNECTION LIMIT of 2), a request waits for one that another request of its
    process gives back, instead of failing at once: on the SQLAlchemy path and the raw one."""
    # SQLAlchemy up to 2 connections, each raw pool 2
    async with _role_limited_to("gs_two_connections", 2, pool_size=1, timeout=5) as limited:
        await _waits_for_one_given_back(limited)


async def _waits_for_one_given_back(limited: Database) -> None:
    async def orm_read() -> int:
        async with limited.read_sessionmaker() as session:
            return int((await session.execute(text("SELECT 1"))).scalar_one())

    async def raw_read() -> int:
        async with limited.raw() as connection:
            return int(await connection.fetchval("SELECT 2"))

    for path in ("orm", "raw"):
        orm_held = await limited.engine.connect()
        raw_held = limited.raw()
        raw_open, waiting = False, None
        try:
            await orm_held.execute(text("SELECT 1"))
            connection = await raw_held.__aenter__()
            raw_open = True
            assert await connection.fetchval("SELECT 1") == 1  # the role's two connections
            waiting = asyncio.create_task(orm_read() if path == "orm" else raw_read())
            await asyncio.sleep(0.5)
            assert not waiting.done(), (path, waiting)  # refused a third, it waits
            # a connection of its own pool goes back: the waiting read takes it
            if path == "orm":
                await orm_held.close()
            else:
                raw_open = False
                await raw_held.__aexit__(None, None, None)
            assert await asyncio.wait_for(waiting, 5) == (1 if path == "orm" else 2)
        finally:
            if waiting is not None:
                waiting.cancel()
            if raw_open:
                await raw_held.__aexit__(None, None, None)
            await orm_held.close()


@pytest.mark.postgres
async def test_a_raw_statement_whose_server_goes_away_mid_query_is_a_503(suite):
    """A restart or failover ends the statements in flight (SQLSTATE 57P01): a 503, and the
    connection is not handed to the next request."""
    database = suite.feed.state.database
    running = asyncio.create_task(database.raw_fetch("SELECT pg_sleep(5), 'marker-57p01'"))
    async with database.engine.connect() as conn:
        # Each look in a transaction of its own: within one, PostgreSQL shows the activity as
        # it was at the first look (stats_fetch_consistency), before the statement started.
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for _ in range(500):  # up to 10 s: the raw pool connects first, on a busy machine too
            found = (
                await conn.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity "
                        "WHERE query LIKE '%marker-57p01%' AND pid <> pg_backend_pid()"
                    )
                )
            ).scalar()
            if found:
                break
            await asyncio.sleep(0.02)
        assert found, "the statement never started"
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": found})
    with pytest.raises(ServiceUnavailable):
        await running
    assert (await database.raw_fetch("SELECT 1"))[0][0] == 1


@pytest.mark.postgres
async def test_every_connection_runs_without_jit(suite):
    """Decision 0014: a statement whose estimate crosses jit_above_cost would spend tens of
    milliseconds compiling on every execution. PostgreSQL's default is on; each of a service's
    connections turns it off: SQLAlchemy's, and every raw pool's, each planning as it says."""
    database = suite.feed.state.database
    async with database.sessionmaker() as session:
        assert (await session.execute(text("SHOW jit"))).scalar() == "off"
    async with database.read_sessionmaker() as session:
        assert (await session.execute(text("SHOW jit"))).scalar() == "off"
    for plan, setting in (
        ("auto", "auto"),
        ("generic", "force_generic_plan"),
        ("custom", "force_custom_plan"),
    ):
        ((jit, plans),) = await database.raw_fetch(
            "SELECT current_setting('jit'), current_setting('plan_cache_mode')", plan=plan
        )
        assert jit == "off"
        assert plans == setting
    async with database.raw("custom") as connection:
        assert await connection.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
    # A pool with settings of its own: its connections have them (an extension's placeholder
    # included) besides the plan's and jit; the pool without them is left as it was.
    own = {"enable_seqscan": "off", "pg_trgm.word_similarity_threshold": "0.3"}
    for _ in range(2):
        async with database.raw("custom", settings=own) as connection:
            row = await connection.fetchrow(
                "SELECT current_setting('enable_seqscan'), current_setting('jit'),"
                " current_setting('plan_cache_mode'),"
                " current_setting('pg_trgm.word_similarity_threshold')"
            )
            assert tuple(row) == ("off", "off", "force_custom_plan", "0.3")
        async with database.raw("custom") as connection:
            assert await connection.fetchval("SHOW enable_seqscan") == "on"
    # The same on psycopg's driver, which takes the setting in libpq's options.
    other = Database(make_url(database.url).set(drivername="postgresql+psycopg").render_as_string(False))
    try:
        async with other.sessionmaker() as session:
            assert (await session.execute(text("SHOW jit"))).scalar() == "off"
    finally:
        await other.dispose()
