"""The records copy, kept from the owners' internal events: every version of a post, a
comment's and a reaction's activity on their post, a group's charter history and the
membership history, and events delivered twice, late or out of order."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.records.classes import reaction_id
from services.records.models import (
    GroupRecord,
    GroupVersion,
    Item,
    ItemVersion,
    MembershipEvent,
    outbox_tables,
)
from tests.helpers import sql_of
from tests.records.support import comment_data, post_data, reaction_data, rows, send

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def _versions(suite, item_id: uuid.UUID) -> list[ItemVersion]:
    return sorted(await rows(suite, ItemVersion, item_id=item_id), key=lambda v: v.version)


async def _item(suite, item_id: uuid.UUID) -> Item:
    (item,) = await rows(suite, Item, id=item_id)
    assert isinstance(item, Item)
    return item


async def test_a_post_keeps_every_text_it_had_and_its_deletion(suite):
    post_id, author = uuid.uuid4(), uuid.uuid4()
    texts = ["The first text", "A second text", "The third text"]
    for n, text in enumerate(texts):
        change = "created" if n == 0 else "edited"
        data = post_data(post_id, author, change, T0 + timedelta(hours=n), created_at=T0, body=text)
        await send(suite, "internal.records.post", str(post_id), data)
    deleted = T0 + timedelta(hours=5)
    data = post_data(post_id, author, "deleted", deleted, created_at=T0, deleted_at=deleted)
    await send(suite, "internal.records.post", str(post_id), data)

    versions = await _versions(suite, post_id)
    assert [v.version for v in versions] == [1, 2, 3, 4]
    assert [v.change for v in versions] == ["created", "edited", "edited", "deleted"]
    assert [v.body for v in versions] == [*texts, None]
    item = await _item(suite, post_id)
    assert item.kind == "post" and item.klass == "organisation_posts" and item.versions == 4
    assert item.deleted_at == deleted and item.created_at == T0
    # edits are activity, a deletion is not
    assert item.last_activity_at == T0 + timedelta(hours=2)


async def test_classes_follow_context_audience_and_group(suite):
    author, group_id = uuid.uuid4(), uuid.uuid4()
    cases: dict[str, dict[str, Any]] = {
        "organisation_posts": {},
        "followers_posts": {"audience": "followers"},
        "group_posts": {"group_id": group_id, "audience": "group"},
        "personal_content": {"context": "personal", "audience": "followers"},
    }
    ids = {}
    for klass, fields in cases.items():
        ids[klass] = uuid.uuid4()
        data = post_data(ids[klass], author, "created", T0, body="Text", **fields)
        await send(suite, "internal.records.post", str(ids[klass]), data)
    for klass, item_id in ids.items():
        assert (await _item(suite, item_id)).klass == klass


async def test_comments_and_reactions_are_activity_on_their_post(suite):
    post_id, author, reader = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await send(
        suite, "internal.records.post", str(post_id), post_data(post_id, author, "created", T0, body="Hi")
    )
    comment_id = uuid.uuid4()
    commented = T0 + timedelta(hours=1)
    data = comment_data(comment_id, post_id, reader, "created", commented, body="A comment")
    await send(suite, "internal.records.comment", str(comment_id), data)
    assert (await _item(suite, post_id)).last_activity_at == commented
    comment = await _item(suite, comment_id)
    assert comment.kind == "comment" and comment.klass == "comments" and comment.post_id == post_id

    reacted = T0 + timedelta(hours=2)
    await send(
        suite, "internal.records.reaction", str(post_id), reaction_data(post_id, reader, "added", reacted)
    )
    assert (await _item(suite, post_id)).last_activity_at == reacted
    reaction = await _item(suite, reaction_id(post_id, reader, "like"))
    assert reaction.kind == "reaction" and reaction.reaction == "like" and reaction.author_id == reader
    assert reaction.created_at == reacted and reaction.deleted_at is None

    removed = T0 + timedelta(hours=3)
    await send(
        suite, "internal.records.reaction", str(post_id), reaction_data(post_id, reader, "removed", removed)
    )
    reaction = await _item(suite, reaction.id)
    assert reaction.deleted_at == removed
    assert [(v.change, v.body) for v in await _versions(suite, reaction.id)] == [
        ("added", None),
        ("removed", None),
    ]
    # a removal is no activity; a comment's deletion neither
    data = comment_data(
        comment_id, post_id, reader, "deleted", removed, created_at=commented, deleted_at=removed
    )
    await send(suite, "internal.records.comment", str(comment_id), data)
    assert (await _item(suite, post_id)).last_activity_at == reacted
    readded = T0 + timedelta(hours=4)
    await send(
        suite, "internal.records.reaction", str(post_id), reaction_data(post_id, reader, "added", readded)
    )
    reaction = await _item(suite, reaction.id)
    assert reaction.deleted_at is None and reaction.created_at == reacted and reaction.versions == 3


async def test_a_comment_that_arrives_before_its_post_still_counts_as_activity(suite):
    post_id, comment_id, author = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    commented = T0 + timedelta(days=2)
    await send(
        suite,
        "internal.records.comment",
        str(comment_id),
        comment_data(comment_id, post_id, author, "created", commented, body="Early"),
    )
    await send(
        suite, "internal.records.post", str(post_id), post_data(post_id, author, "created", T0, body="Late")
    )
    assert (await _item(suite, post_id)).last_activity_at == commented


async def test_a_new_post_costs_records_two_statements_three_on_sqlite(suite):
    """The item (its last activity read from what came before it, in the same statement) with
    its first version, one statement on PostgreSQL (decision 0054), and its files following its
    class: nothing more for the commonest event."""
    post_id, author = uuid.uuid4(), uuid.uuid4()
    with sql_of(suite.records) as seen:
        await send(
            suite, "internal.records.post", str(post_id), post_data(post_id, author, "created", T0, body="Hi")
        )
    starts = [" ".join(statement.split()[:3]) for statement in seen]
    if suite.records.state.database.is_postgres:
        assert starts == ["WITH new_item AS", "UPDATE media_record SET"]
        assert "INSERT INTO item " in seen[0] and "INSERT INTO item_version " in seen[0]
    else:
        assert starts == ["INSERT INTO item", "INSERT INTO item_version", "UPDATE media_record SET"]
    assert [(v.version, v.change, v.body) for v in await _versions(suite, post_id)] == [(1, "created", "Hi")]


async def test_events_delivered_twice_late_or_again_under_another_id_add_nothing(suite):
    post_id, author = uuid.uuid4(), uuid.uuid4()
    created = post_data(post_id, author, "created", T0, body="Original")
    event_id = str(uuid.uuid4())
    assert (await send(suite, "internal.records.post", str(post_id), created, event_id=event_id))[
        "applied"
    ] == 1
    # the same event again (a relay's retry): the receiver skips it
    await send(suite, "internal.records.post", str(post_id), created, event_id=event_id)
    # the same change published again under another id (a republish): skipped by its time
    await send(suite, "internal.records.post", str(post_id), created)
    assert len(await _versions(suite, post_id)) == 1

    deleted_at = T0 + timedelta(hours=3)
    deletion = post_data(post_id, author, "deleted", deleted_at, created_at=T0, deleted_at=deleted_at)
    await send(suite, "internal.records.post", str(post_id), deletion)
    # an edit made before the deletion, delivered after it: its text is kept, the state stays
    late = post_data(post_id, author, "edited", T0 + timedelta(hours=1), created_at=T0, body="Edited before")
    await send(suite, "internal.records.post", str(post_id), late)
    versions = await _versions(suite, post_id)
    assert [(v.version, v.change, v.body) for v in versions] == [
        (1, "created", "Original"),
        (2, "deleted", None),
        (3, "edited", "Edited before"),
    ]
    item = await _item(suite, post_id)
    assert item.deleted_at == deleted_at and item.changed_at == deleted_at
    # one more event, nothing else: records publishes nothing for what it receives
    async with suite.records.state.database.sessionmaker() as session:
        assert not (await session.execute(select(outbox_tables.event.c.id))).all()


async def test_a_malformed_content_event_is_dead_lettered_not_applied(suite):
    post_id = uuid.uuid4()
    data = post_data(post_id, uuid.uuid4(), "exploded", T0, body="Text")
    answer = await send(suite, "internal.records.post", str(post_id), data)
    assert answer["applied"] == 0
    assert not await rows(suite, Item, id=post_id)
    async with suite.records.state.database.sessionmaker() as session:
        dead = (await session.execute(select(outbox_tables.dead_letter.c.type))).scalars().all()
    assert dead == ["internal.records.post"]


async def test_a_group_keeps_its_charter_history_and_its_membership_history(suite):
    group_id, persona = uuid.uuid4(), uuid.uuid4()

    def charter(change: str, at: datetime, **fields: object) -> dict[str, object]:
        return {
            "id": str(group_id),
            "context": "professional",
            "handle": "cloud",
            "name": "Cloud",
            "purpose": "Shared infrastructure.",
            "visibility": "public",
            "created_at": T0.isoformat(),
            "change": change,
            "at": at.isoformat(),
            "deleted": False,
            **fields,
        }

    await send(suite, "internal.records.group", str(group_id), charter("created", T0), source="groups")
    renamed = charter("updated", T0 + timedelta(days=1), name="Cloud platform")
    await send(suite, "internal.records.group", str(group_id), renamed, source="groups")
    await send(suite, "internal.records.group", str(group_id), renamed, source="groups")  # republished
    gone = T0 + timedelta(days=2)
    await send(
        suite,
        "internal.records.group",
        str(group_id),
        charter("deleted", gone, deleted=True),
        source="groups",
    )
    # a late update does not bring the group back
    await send(
        suite,
        "internal.records.group",
        str(group_id),
        charter("updated", T0 + timedelta(hours=30), name="Late"),
        source="groups",
    )
    (record,) = await rows(suite, GroupRecord, id=group_id)
    assert record.name == "Cloud" and record.deleted_at == gone
    history = sorted(await rows(suite, GroupVersion, group_id=group_id), key=lambda v: v.at)
    assert [(v.change, v.data["name"]) for v in history] == [
        ("created", "Cloud"),
        ("updated", "Cloud platform"),
        ("updated", "Late"),
        ("deleted", "Cloud"),
    ]

    added = str(uuid.uuid4())
    for n, (change, role) in enumerate(
        [("added", "member"), ("updated", "moderator"), ("removed", "moderator")]
    ):
        data = {
            "group_id": str(group_id),
            "persona_id": str(persona),
            "context": "professional",
            "role": role,
            "joined_at": T0.isoformat(),
            "updated_at": (T0 + timedelta(hours=n)).isoformat(),
        }
        event_id = added if n == 0 else None
        await send(suite, f"membership.{change}", str(group_id), data, source="groups", event_id=event_id)
        if n == 0:  # delivered twice
            await send(suite, f"membership.{change}", str(group_id), data, source="groups", event_id=event_id)
    memberships = sorted(await rows(suite, MembershipEvent, persona_id=persona), key=lambda m: m.at)
    assert [(m.change, m.role) for m in memberships] == [
        ("added", "member"),
        ("updated", "moderator"),
        ("removed", "moderator"),
    ]
    assert memberships[0].id == uuid.UUID(added) and memberships[2].at == T0 + timedelta(hours=2)


async def test_content_is_kept_without_reading_back_what_it_wrote(suite):
    """A post's item and version are written, and its media (any that came first) take its
    class, without reading that class back from the item just written; and a new reaction
    reads no item: its insert tells that it is new (decision 0046)."""
    from sqlalchemy import event as sql_event

    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    engine = suite.records.state.database.engine.sync_engine
    post_id, author = uuid.uuid4(), uuid.uuid4()
    sql_event.listen(engine, "before_cursor_execute", record)
    try:
        data = post_data(post_id, author, "created", T0, body="Hi")
        await send(suite, "internal.records.post", str(post_id), data)
        posted = list(seen)
        seen.clear()
        reaction = reaction_data(post_id, uuid.uuid4(), "added", T0 + timedelta(minutes=1))
        await send(suite, "internal.records.reaction", str(post_id), reaction)
    finally:
        sql_event.remove(engine, "before_cursor_execute", record)
    assert any(s.startswith("UPDATE media_record SET klass") for s in posted), posted
    assert not any(s.startswith("SELECT item.klass") for s in posted), posted
    assert any(s.startswith(("INSERT INTO item ", "WITH new_item AS (INSERT INTO item ")) for s in seen), seen
    assert not any(s.startswith("SELECT item.") for s in seen), seen
    assert (await _item(suite, post_id)).klass == "organisation_posts"


async def test_a_new_items_event_delivered_four_times_at_once_is_kept_once(suite):
    """Concurrent deliveries of one event (a retry racing a slow first attempt) all succeed
    and add one item and one version, without a processed-event claim: the item's insert does
    nothing for the deliveries that meet it (decision 0046)."""
    post_id = uuid.uuid4()
    data = post_data(post_id, uuid.uuid4(), "created", T0, body="Once")
    event_id = str(uuid.uuid4())
    answers = await asyncio.gather(
        *(send(suite, "internal.records.post", str(post_id), data, event_id=event_id) for _ in range(4))
    )
    assert all(answer["received"] == 1 for answer in answers), answers
    versions = await _versions(suite, post_id)
    assert [(v.version, v.change, v.body) for v in versions] == [(1, "created", "Once")]
    assert (await _item(suite, post_id)).versions == 1
    processed = suite.records.state.outbox.tables.processed
    async with suite.records.state.database.sessionmaker() as session:
        claims = (await session.execute(select(processed).where(processed.c.id == uuid.UUID(event_id)))).all()
    assert claims == []


async def test_a_new_items_events_delivered_at_once_each_add_their_version(suite):
    """A comment's creation and its edit, and two reactions' events, delivered at the same
    time: each event adds its version once, in the order the item's row lock gives, and the
    item follows the latest change by the owner's time."""
    post_id, comment_id, author = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    created = comment_data(comment_id, post_id, author, "created", T0, body="First")
    edited = comment_data(
        comment_id, post_id, author, "edited", T0 + timedelta(minutes=5), created_at=T0, body="Second"
    )
    answers = await asyncio.gather(
        *(
            send(suite, "internal.records.comment", str(comment_id), data)
            for data in (created, edited, created, edited)
        )
    )
    assert all(answer["received"] == 1 for answer in answers), answers
    versions = await _versions(suite, comment_id)
    assert sorted((v.change, v.body) for v in versions) == [("created", "First"), ("edited", "Second")]
    assert sorted(v.version for v in versions) == [1, 2]
    item = await _item(suite, comment_id)
    assert item.versions == 2
    assert item.changed_at == T0 + timedelta(minutes=5)


@pytest.mark.postgres  # a row deleted by another connection between two statements
async def test_an_item_disposed_of_between_the_insert_and_the_read_is_inserted_again(suite):
    """The insert that does nothing locks nothing: a disposal may delete the item before the
    delivery reads it. The delivery then inserts it again, as a late event after a disposal
    does, instead of failing."""
    from sqlalchemy import create_engine, text
    from sqlalchemy import event as sql_event

    post_id, author = uuid.uuid4(), uuid.uuid4()
    await send(
        suite, "internal.records.post", str(post_id), post_data(post_id, author, "created", T0, body="A")
    )
    url = suite.records.state.settings.database_url.replace("+asyncpg", "+psycopg")
    other = create_engine(url)
    disposed: list[str] = []

    def dispose_after_the_insert(conn, cursor, statement, parameters, context, executemany):
        words = " ".join(statement.split())
        inserting = words.startswith(("INSERT INTO item ", "WITH new_item AS (INSERT INTO item "))
        if inserting and cursor.rowcount == 0 and not disposed:
            with other.begin() as disposal:
                disposal.execute(text("DELETE FROM item_version WHERE item_id = :id"), {"id": post_id})
                disposal.execute(text("DELETE FROM item WHERE id = :id"), {"id": post_id})
            disposed.append(statement)

    engine = suite.records.state.database.engine.sync_engine
    sql_event.listen(engine, "after_cursor_execute", dispose_after_the_insert)
    try:
        edited = post_data(post_id, author, "edited", T0 + timedelta(minutes=1), created_at=T0, body="B")
        await send(suite, "internal.records.post", str(post_id), edited)
    finally:
        sql_event.remove(engine, "after_cursor_execute", dispose_after_the_insert)
        other.dispose()
    assert disposed
    assert [(v.version, v.change, v.body) for v in await _versions(suite, post_id)] == [(1, "edited", "B")]
