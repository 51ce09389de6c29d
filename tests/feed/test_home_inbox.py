"""The home timeline's inboxes (PostgreSQL; decision 0012): whatever changes a reader's sources,
the posts' state or the inbox itself, the home timeline shows what the on-demand rule shows.

The tests without the ``postgres`` mark run on SQLite too, where there is no inbox: there they
state the rule the inbox must keep."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import func, make_url, select, text, update

from kit.housekeeping import Housekeeper
from kit.pagination import encode_cursor
from services.feed import home_sql, inbox
from services.feed.models import HomeEntry, HomeInbox, Post
from tests.feed.support import (
    bodies,
    every_page,
    follow,
    make_group,
    membership,
    people,
    post,
    send_events,
    set_persona_status,
    statements,
)
from tests.helpers import auth

HOME = "/api/v1/timelines/home"


async def _walk(suite, token: str, limit: int) -> list[str]:
    """Every page of the caller's home timeline, in order."""
    return await every_page(suite.client, token, HOME, limit=limit)


async def _inbox(suite, reader: str) -> tuple[HomeInbox | None, int]:
    async with suite.feed.state.database.sessionmaker() as session:
        box = await session.get(HomeInbox, uuid.UUID(reader))
        entries = await session.scalar(
            select(func.count()).select_from(HomeEntry).where(HomeEntry.reader_id == uuid.UUID(reader))
        )
        return box, int(entries or 0)


async def test_following_and_joining_after_the_home_was_read_bring_older_posts(suite):
    (ada, ada_id), (bob, bob_id), (cyd, cyd_id) = await people(suite, "ada", "bob", "cyd")
    group = await make_group(suite, {cyd_id: "owner"})
    await post(suite.client, bob, "bob before")
    await post(suite.client, cyd, "cyd in the group before", audience="group", group_id=group)
    await post(suite.client, ada, "ada own")
    assert await bodies(suite.client, ada, HOME) == ["ada own"]
    await follow(suite.client, ada, bob_id)
    assert await bodies(suite.client, ada, HOME) == ["ada own", "bob before"]
    await send_events(suite, ("membership.added", group, membership(group, ada_id)))
    assert await bodies(suite.client, ada, HOME) == ["ada own", "cyd in the group before", "bob before"]
    await post(suite.client, bob, "bob after")
    await post(suite.client, cyd, "cyd in the group after", audience="group", group_id=group)
    expected = ["cyd in the group after", "bob after", "ada own", "cyd in the group before", "bob before"]
    assert await bodies(suite.client, ada, HOME) == expected
    resp = await suite.client.delete(f"/api/v1/following/{bob_id}", headers=auth(ada))
    assert resp.status_code == 204
    assert await bodies(suite.client, ada, HOME) == [b for b in expected if not b.startswith("bob")]
    await send_events(suite, ("membership.removed", group, membership(group, ada_id)))
    assert await bodies(suite.client, ada, HOME) == ["ada own"]


async def test_an_author_deactivated_then_back_and_deleted_posts_after_the_home_was_read(suite):
    (ada, _), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, ada, bob_id)
    first = await post(suite.client, bob, "bob one")
    await post(suite.client, bob, "bob two")
    await set_persona_status(suite, bob_id, "bob", "deactivated")
    assert await bodies(suite.client, ada, HOME) == []  # the inbox is built now, bob hidden
    await set_persona_status(suite, bob_id, "bob", "active")
    assert await bodies(suite.client, ada, HOME) == ["bob two", "bob one"]
    assert (await suite.client.delete(f"/api/v1/posts/{first['id']}", headers=auth(bob))).status_code == 204
    assert await bodies(suite.client, ada, HOME) == ["bob two"]


async def test_an_announcement_pinned_when_the_home_was_read_stays_once_unpinned(suite):
    (ada, _), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, ada, bob_id)
    await post(suite.client, bob, "earlier")
    announcement = await post(suite.client, bob, "announcement")
    await _pin(suite, announcement["id"], timedelta(hours=1))
    home = (await suite.client.get(HOME, headers=auth(ada))).json()["items"]
    assert [(p["body"], p["pinned"]) for p in home] == [("announcement", True), ("earlier", False)]
    await _pin(suite, announcement["id"], timedelta(minutes=-1))  # the pin has ended
    home = (await suite.client.get(HOME, headers=auth(ada))).json()["items"]
    assert [(p["body"], p["pinned"]) for p in home] == [("announcement", False), ("earlier", False)]


async def _pin(suite, post_id: str, until: timedelta) -> None:
    async with suite.feed.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(Post).where(Post.id == uuid.UUID(post_id)).values(pinned_until=datetime.now(UTC) + until)
        )


async def test_pages_cross_the_inbox_floor_without_gaps_or_repeats(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    group = await make_group(suite, {ada_id: "member", bob_id: "owner"})
    await follow(suite.client, ada, bob_id)
    written = []
    for i in range(9):
        written.append(f"org {i}")
        await post(suite.client, bob, written[-1])
        written.append(f"group {i}")
        await post(suite.client, bob, written[-1], audience="group", group_id=group)
    suite.feed.state.settings.home_inbox_size = 5
    for limit in (1, 3, 4, 7, 50):
        assert await _walk(suite, ada, limit) == list(reversed(written)), limit
    if suite.feed.state.database.is_postgres:
        box, entries = await _inbox(suite, ada_id)
        assert box is not None and box.floor_id is not None and entries == 5


@pytest.mark.postgres
async def test_statements_per_page_from_the_inbox_across_and_below_its_floor(suite):
    (ada, _), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, ada, bob_id)
    for i in range(12):
        await post(suite.client, bob, f"post {i}")
    suite.feed.state.settings.home_inbox_size = 6
    first = await suite.client.get(HOME, params={"limit": 3}, headers=auth(ada))  # builds the inbox
    cursor = first.json()["next_cursor"]
    counts = []
    for _ in range(3):
        with statements(suite) as seen:
            page = await suite.client.get(HOME, params={"limit": 3, "cursor": cursor}, headers=auth(ada))
        assert page.status_code == 200 and len(page.json()["items"]) == 3
        counts.append(len(seen))
        cursor = page.json()["next_cursor"]
    # posts 8..6 from the inbox (its last entries, then one more on demand: 1 + 2 statements),
    # 5..3 and 2..0 below its floor (on demand: 2 statements each)
    assert counts == [3, 2, 2]
    assert [p["body"] for p in page.json()["items"]] == ["post 2", "post 1", "post 0"]


async def test_a_walk_goes_on_when_the_inbox_goes_midway(suite):
    (ada, _), (bob, bob_id), (_, cyd_id) = await people(suite, "ada", "bob", "cyd")
    await follow(suite.client, ada, bob_id)
    for i in range(7):
        await post(suite.client, bob, f"post {i}")
    first = await suite.client.get(HOME, params={"limit": 3}, headers=auth(ada))
    seen = [p["body"] for p in first.json()["items"]]
    await follow(suite.client, ada, cyd_id)  # drops ada's inbox; cyd has no posts
    cursor = first.json()["next_cursor"]
    while cursor:
        page = await suite.client.get(HOME, params={"limit": 3, "cursor": cursor}, headers=auth(ada))
        seen += [p["body"] for p in page.json()["items"]]
        cursor = page.json()["next_cursor"]
    assert seen == [f"post {i}" for i in reversed(range(7))]


async def test_a_walk_goes_on_below_an_inbox_rebuilt_above_it(suite):
    (ada, _), (bob, bob_id), (_, cyd_id) = await people(suite, "ada", "bob", "cyd")
    await follow(suite.client, ada, bob_id)
    for i in range(8):
        await post(suite.client, bob, f"old {i}")
    suite.feed.state.settings.home_inbox_size = 5
    first = await suite.client.get(HOME, params={"limit": 3}, headers=auth(ada))
    seen = [p["body"] for p in first.json()["items"]]
    await follow(suite.client, ada, cyd_id)  # drops the inbox
    for i in range(6):
        await post(suite.client, bob, f"new {i}")
    # another tab opens the home: the inbox is built again, only new posts in it
    assert await bodies(suite.client, ada, HOME, limit=2) == ["new 5", "new 4"]
    cursor = first.json()["next_cursor"]
    while cursor:
        page = await suite.client.get(HOME, params={"limit": 3, "cursor": cursor}, headers=auth(ada))
        seen += [p["body"] for p in page.json()["items"]]
        cursor = page.json()["next_cursor"]
    assert seen == [f"old {i}" for i in reversed(range(8))]


async def test_a_home_cursor_with_a_foreign_mark_is_400(suite):
    ((ada, ada_id),) = await people(suite, "ada")
    forged = encode_cursor(f"home:{ada_id}", [str(uuid.uuid4()), "newer"])
    resp = await suite.client.get(HOME, params={"cursor": forged}, headers=auth(ada))
    assert resp.status_code == 400 and resp.json()["type"].endswith("bad-cursor")
    marked = encode_cursor(f"home:{ada_id}", [str(uuid.uuid4()), "older"])
    assert (await suite.client.get(HOME, params={"cursor": marked}, headers=auth(ada))).status_code == 200


@pytest.mark.postgres
async def test_new_posts_reach_existing_inboxes_only(suite):
    (ada, ada_id), (bob, bob_id), (cyd, cyd_id) = await people(suite, "ada", "bob", "cyd")
    group = await make_group(suite, {ada_id: "member", bob_id: "owner", cyd_id: "member"})
    await follow(suite.client, ada, bob_id)
    await follow(suite.client, cyd, bob_id)
    assert await bodies(suite.client, ada, HOME) == []  # ada's inbox is built, cyd has none
    await post(suite.client, bob, "to followers", audience="followers")
    await post(suite.client, bob, "to the group", audience="group", group_id=group)
    box, entries = await _inbox(suite, ada_id)
    assert box is not None and entries == 2
    assert await _inbox(suite, cyd_id) == (None, 0)
    assert await _inbox(suite, bob_id) == (None, 0)
    assert await bodies(suite.client, bob, HOME) == ["to the group", "to followers"]
    await post(suite.client, bob, "bob's own")
    assert (await _inbox(suite, bob_id))[1] == 3


@pytest.mark.postgres
async def test_a_build_waits_for_posting_in_flight(suite):
    """The race the lock closes: a post committed while an inbox is built must be in it."""
    ((_, ada_id),) = await people(suite, "ada")
    database = suite.feed.state.database
    async with database.sessionmaker() as posting, posting.begin():
        await inbox.fan_out(
            posting, Post(author_id=uuid.uuid4(), context="professional", audience="organisation", body="x")
        )
        building = asyncio.create_task(
            inbox.build(database, uuid.UUID(ada_id), "professional", size=10, now=datetime.now(UTC))
        )
        await asyncio.sleep(0.5)
        assert not building.done()
    assert await asyncio.wait_for(building, 10)
    box, _ = await _inbox(suite, ada_id)
    assert box is not None


@pytest.mark.postgres
async def test_a_new_post_takes_the_lock_with_its_row_and_fans_out_after(suite):
    """A new post's row, its tags and the stripes' shared lock are one statement, and the
    fan-out, a later one with the post's events, reads the inboxes with the lock held
    (decisions 0053 and 0054); no statement takes the lock on its own, nor writes the tags or
    the events apart."""
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    group = await make_group(suite, {ada_id: "member", bob_id: "member"})
    assert await bodies(suite.client, ada, HOME) == []  # ada's inbox is built
    with statements(suite) as seen:
        made = await post(suite.client, bob, "A #tagged post.", audience="group", group_id=group)
    written = [s for s, _ in seen]
    locking = [i for i, s in enumerate(written) if "pg_advisory_xact_lock_shared" in s]
    assert len(locking) == 1, written
    (at,) = locking
    assert "INSERT INTO post " in written[at] and "INSERT INTO post_tag" in written[at]
    assert sum("post_tag" in s for s in written) == 1, written
    # The fan-out is the main statement of the events' write (decision 0054), after the lock.
    fan_out = [i for i, s in enumerate(written) if "INSERT INTO home_entry" in s]
    assert len(fan_out) == 1 and fan_out[0] > at, written
    assert "INSERT INTO outbox_event" in written[fan_out[0]], written
    assert sum("INSERT INTO outbox_event" in s for s in written) == 1, written
    box, entries = await _inbox(suite, ada_id)
    assert box is not None and entries == 1
    async with suite.feed.state.database.sessionmaker() as session:
        query = text("SELECT tag, context FROM post_tag WHERE post_id = :post")
        tags = (await session.execute(query, {"post": uuid.UUID(made["id"])})).all()
    assert [tuple(row) for row in tags] == [("tagged", "professional")]


@pytest.mark.postgres
async def test_posting_and_following_wait_for_a_build_in_flight(suite):
    (ada, ada_id), (bob, bob_id), (cyd, _) = await people(suite, "ada", "bob", "cyd")
    database = suite.feed.state.database
    for stripe in (0, inbox.STRIPES - 1):  # any stripe: fan-out and drops take them all
        async with database.sessionmaker() as building, building.begin():
            await building.execute(
                text("SELECT pg_advisory_xact_lock(:space, :stripe)"),
                {"space": inbox.LOCK_SPACE, "stripe": stripe},
            )
            posting = asyncio.create_task(post(suite.client, bob, f"while building {stripe}"))
            following = asyncio.create_task(follow(suite.client, cyd, bob_id if stripe else ada_id))
            await asyncio.sleep(0.5)
            assert not posting.done() and not following.done()
        await asyncio.wait_for(asyncio.gather(posting, following), 10)
    assert (await suite.client.get(HOME, headers=auth(ada))).status_code == 200


@pytest.mark.postgres
async def test_a_build_that_cannot_take_its_lock_reads_on_demand(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, ada, bob_id)
    await post(suite.client, bob, "hello")
    database = suite.feed.state.database
    async with database.sessionmaker() as building, building.begin():
        await building.execute(
            text("SELECT pg_advisory_xact_lock(:space, :stripe)"),
            {"space": inbox.LOCK_SPACE, "stripe": inbox.stripe(uuid.UUID(ada_id))},
        )
        assert await bodies(suite.client, ada, HOME) == ["hello"]  # after BUILD_LOCK_TIMEOUT
        assert await _inbox(suite, ada_id) == (None, 0)
    assert await bodies(suite.client, ada, HOME) == ["hello"]
    assert (await _inbox(suite, ada_id))[0] is not None


@pytest.mark.postgres
async def test_an_inbox_dropped_the_moment_it_is_built_still_serves_the_page(suite, monkeypatch):
    (ada, _), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, ada, bob_id)
    await post(suite.client, bob, "hello")
    build = inbox.build

    async def build_then_drop(database, reader, *args, **kwargs):
        built = await build(database, reader, *args, **kwargs)
        async with database.sessionmaker() as session, session.begin():
            await inbox.drop(session, reader)  # as a follow committed right after the build
        return built

    monkeypatch.setattr(inbox, "build", build_then_drop)
    page = (await suite.client.get(HOME, headers=auth(ada))).json()
    assert [p["body"] for p in page["items"]] == ["hello"]


@pytest.mark.postgres
async def test_posts_and_first_reads_at_once_lose_nothing(suite):
    (ada, _), (bob, bob_id), (_, cyd_id) = await people(suite, "ada", "bob", "cyd")
    await follow(suite.client, ada, bob_id)
    for round_ in range(8):
        # following someone else drops ada's inbox: the next read builds it again
        await follow(suite.client, ada, cyd_id)
        await suite.client.delete(f"/api/v1/following/{cyd_id}", headers=auth(ada))
        await asyncio.gather(
            suite.client.get(HOME, headers=auth(ada)),
            *(post(suite.client, bob, f"round {round_} post {i}") for i in range(3)),
        )
        shown = await bodies(suite.client, ada, HOME, limit=100)
        assert {f"round {round_} post {i}" for i in range(3)} <= set(shown), round_


@pytest.mark.postgres
async def test_inboxes_expire_with_their_entries_and_are_built_again(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, ada, bob_id)
    await follow(suite.client, bob, ada_id)
    await post(suite.client, bob, "hello")
    assert await bodies(suite.client, ada, HOME) == ["hello"]
    assert await bodies(suite.client, bob, HOME) == ["hello"]
    database = suite.feed.state.database
    old = datetime.now(UTC) - timedelta(hours=25)
    async with database.sessionmaker() as session, session.begin():
        for table in (HomeInbox, HomeEntry):
            await session.execute(
                update(table).where(table.reader_id == uuid.UUID(ada_id)).values(built_at=old)
            )
    keeper: Housekeeper = suite.feed.state.housekeeper
    removed = await Housekeeper(database, keeper.rules, batch=1).sweep()
    assert removed["home inboxes"] == 1 and removed["home inbox entries"] == 1
    assert await _inbox(suite, ada_id) == (None, 0)
    assert (await _inbox(suite, bob_id))[1] == 1
    assert await bodies(suite.client, ada, HOME) == ["hello"]
    assert (await _inbox(suite, ada_id))[1] == 1


@pytest.mark.postgres
async def test_an_erased_reader_keeps_no_inbox(suite):
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, ada, bob_id)
    await post(suite.client, bob, "hello")
    assert await bodies(suite.client, ada, HOME) == ["hello"]
    assert (await _inbox(suite, ada_id))[0] is not None
    await send_events(suite, ("persona.erased", ada_id, {"id": ada_id, "context": "professional"}))
    assert (await _inbox(suite, ada_id))[0] is None


@pytest.mark.postgres
async def test_generic_inbox_plans_look_authors_up_by_key_at_any_number_of_personas(suite):
    """The inbox's pages run as generic plans, which cannot know the page's LIMIT: the author's
    name must still be looked up per row of the page, not by hashing every persona (what a
    plain join became at 10,000 personas)."""
    (ada, ada_id), (bob, bob_id) = await people(suite, "ada", "bob")
    await follow(suite.client, ada, bob_id)
    await post(suite.client, bob, "a post")
    assert (await suite.client.get(HOME, headers=auth(ada))).status_code == 200  # builds the inbox
    database = suite.feed.state.database
    url = make_url(database.url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(url, server_settings={"plan_cache_mode": "force_generic_plan"})
    try:
        # As many personas and inbox entries as a real organisation has, and statistics on them.
        await conn.execute(
            """INSERT INTO persona_replica (id, context, handle, display_name, status, updated_at)
            SELECT gen_random_uuid(), 'professional', 'p' || i, 'P ' || i, 'active', now()
            FROM generate_series(1, 10000) i"""
        )
        await conn.execute(
            """INSERT INTO post (id, author_id, context, audience, body, created_at, updated_at)
            SELECT gen_random_uuid(), $1, 'professional', 'organisation', 'a post', now(), now()
            FROM generate_series(1, 2000)""",
            uuid.UUID(bob_id),
        )
        await conn.execute(
            """INSERT INTO home_entry (reader_id, post_id, built_at)
            SELECT $1, id, now() FROM post ON CONFLICT DO NOTHING""",
            uuid.UUID(ada_id),
        )
        await conn.execute("ANALYZE persona_replica, post, home_entry")
        reader = f"'{ada_id}', 'professional', now(), 21"
        for name, sql, args in (
            ("first", home_sql.INBOX_FIRST_PAGE, reader),
            ("later", home_sql.INBOX_LATER_PAGE, f"{reader}, '{uuid.uuid4()}'"),
        ):
            await conn.execute(f"PREPARE {name} AS {sql}")
            plan = "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN EXECUTE {name}({args})"))
            assert "Seq Scan on persona_replica" not in plan and "Hash" not in plan, plan
    finally:
        # Statistics outlive the tables' truncation between tests: leave them as they were.
        await conn.execute("DELETE FROM home_entry")
        await conn.execute("DELETE FROM post")
        await conn.execute("DELETE FROM persona_replica")
        await conn.execute("ANALYZE persona_replica, post, home_entry")
        await conn.close()
