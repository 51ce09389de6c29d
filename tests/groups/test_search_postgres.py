"""Searching groups on PostgreSQL only: a typo in a name still finds the group (pg_trgm), and
the plans of the hardest queries read the indexes, not the whole table."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from kit import search as kit_search
from kit.db import SERVER_SETTINGS
from services.groups import search
from tests.groups.support import people
from tests.groups.test_search import handles, principal
from tests.helpers import create_group

pytestmark = pytest.mark.postgres

# 20 000 groups of two contexts: every purpose says "agency", each name and purpose has a
# word of its own, one in fifty has the tag t7, a third are secret.
FILL = """
INSERT INTO "group" (id, context, name, handle, purpose, tags, visibility, success_indicators,
                     stewards, member_count, created_by, created_at, updated_at, lang)
SELECT gen_random_uuid(), CASE WHEN i % 2 = 0 THEN 'professional' ELSE 'personal' END,
       'Group ' || md5(i::text), 'g' || i,
       'Work together on ' || md5((i * 7)::text) || ' for the agency',
       ('["t' || (i % 50) || '"]')::json, CASE WHEN i % 3 = 0 THEN 'secret' ELSE 'open' END,
       '[]'::json, '[]'::json, 1, gen_random_uuid(), now(), now(),
       CASE WHEN i % 2 = 0 THEN 'en' END
FROM generate_series(1, 20000) AS i
"""

# (query, whether the text index must appear in the plan): the hardest inputs, a word in
# every row, one in none, the most terms allowed, phrases, exclusions, a filter over a common
# word, a typo.
WORST = [
    ("agency", False),
    ("zzzrare", True),
    ("agency zzzrare", True),
    ("agency -agency", True),
    (" OR ".join(f"w{i}" for i in range(16)), False),
    (" ".join(f"w{i}" for i in range(16)), True),
    ('"work together on"', False),
    ('"work together" -agency', True),
    ("tag:t7 agency", True),
    ("#t7 work -zzz", True),
    ("migartion", True),
    ("agency since:2026-01-01 until:2026-12-31", False),
]


@pytest.fixture
def explained(suite: Any) -> Any:
    """An engine on groups' database that explains each statement instead of running it."""
    url = suite.groups.state.database.url
    engine = create_async_engine(url, connect_args={"server_settings": SERVER_SETTINGS})

    @event.listens_for(engine.sync_engine, "before_cursor_execute", retval=True)
    def _explain(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> tuple[str, Any]:
        return "EXPLAIN " + statement, parameters

    return engine


async def test_a_typo_in_a_name_still_finds_the_group(suite):
    p = await people(suite, "ada")
    ada = p["ada"][0]
    await create_group(
        suite.client, ada, "squad", name="Migration squad", purpose="Move the services together."
    )
    await create_group(
        suite.client, ada, "notes", name="Notes", purpose="The migration of our notes to the wiki."
    )
    assert await handles(suite, ada, "migration") == ["squad", "notes"]  # the name first
    assert await handles(suite, ada, "migartion") == ["squad"]  # a typo: by the name only
    assert await handles(suite, ada, "migartion -services") == []  # exclusions still hold
    assert await handles(suite, ada, "migartion tag:x") == []  # and filters
    assert await handles(suite, ada, '"migartion squad"') == []  # a phrase is meant as written


async def test_the_worst_queries_read_the_indexes(suite, explained):
    p = await people(suite, "ada")
    ada_id = p["ada"][1]
    async with suite.groups.state.database.sessionmaker() as session, session.begin():
        await session.execute(text(FILL))
        await session.execute(text('ANALYZE "group"'))
    caller = principal(ada_id)
    try:
        for q, uses_text_index in WORST:
            query = kit_search.parse(q)
            match = search.Match(caller, query, archived=False, postgres=True)
            middle = uuid.UUID(int=2**127)
            statements = [
                match.candidates_statement(None),
                match.candidates_statement(middle),
                match.older_statement(middle, 21),
            ]
            for statement in statements:
                async with explained.connect() as connection:
                    plan = "\n".join((await connection.execute(statement)).scalars().all())
                assert 'Seq Scan on "group"' not in plan, (q, plan)
                if uses_text_index:
                    assert "ix_group_search_vector" in plan, (q, plan)
    finally:
        await explained.dispose()
