"""The database layer's own rules: reads without a transaction, and a database that drops its
connections (a restart, a failover) costs at most a 503, never a 500."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from kit.db import Database
from kit.errors import ServiceUnavailable
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
