"""Who sees what on the home timeline is stated once per dialect: in SQL for PostgreSQL's pages
and inboxes (``services.feed.home_sql``), and as SQLAlchemy conditions for everything else
(``services.feed.timelines``: SQLite's home timeline and the event stream). These tests hold
the statements together on generated worlds: personas of both contexts, some no longer active,
some limited by moderation, and one the replica lacks; follows; open, closed and secret groups
with their members, some hidden or removed by moderation; posts of every audience, deleted ones,
ones moderation hid, held, removed or locked, pinned announcements (current and ended) and posts
their group pinned; reactions. For several readers every path must show the same posts in the same order,
each with exactly the JSON of ``schemas.post_public``.

On PostgreSQL the world also changes after the readers' inboxes are built, the way the write
side changes it (new posts fanned out, follows and leaving a group dropping inboxes, deletions,
a deactivation, a pin that ends, moderation's actions applied by their flows: a removed post
restored and fanned out again, a post hidden, a persona limited), so that the inbox's upkeep is
compared too."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, update
from sqlmodel import col, select

from domain.principal import Principal
from kit.ids import new_id
from services.feed import home_sql, inbox, moderation
from services.feed.models import (
    REACTION_KINDS,
    Follow,
    GroupReplica,
    MembershipReplica,
    PersonaReplica,
    Post,
    Reaction,
)
from services.feed.moderation import ContentAction
from services.feed.schemas import AuthorPublic, PostPublic, ReactionsPublic, post_public
from services.feed.timelines import (
    home_condition,
    home_lead,
    home_sources,
    page_of_posts,
    posts_for,
    visible_to,
)
from tests.feed.support import token_with_roles
from tests.helpers import auth

HOME = "/api/v1/timelines/home"
STREAM = "/api/v1/stream"
SEEDS = [1, 2]
FROM_THE_START = f"{'0' * 32}.{'0' * 32}"  # a Last-Event-ID before every post and notification
TRICKY = ["plain", 'Quote " back\\slash', "tab\t new\nline é 漢 🎉 \u2028", '</script> {"a": [1]}']


@dataclass
class Reader:
    persona: uuid.UUID
    context: str
    token: str

    @property
    def principal(self) -> Principal:
        return Principal(
            subject=str(self.persona),
            persona_id=self.persona,
            context=self.context,
            scopes=frozenset(),
            roles=frozenset(),
            token_id="t",
            issued_at=0,
            expires_at=2**40,
        )


@dataclass
class World:
    rng: random.Random
    now: datetime
    personas: dict[uuid.UUID, PersonaReplica] = field(default_factory=dict)
    missing: uuid.UUID = field(default_factory=uuid.uuid4)  # an author the replica does not know
    groups: list[GroupReplica] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    readers: list[Reader] = field(default_factory=list)

    def context_of(self, persona: uuid.UUID) -> str:
        return self.personas[persona].context if persona in self.personas else "professional"


async def _generate(suite: Any, seed: int) -> World:
    """A random world written straight to feed's tables, and tokens for its readers."""
    world = World(random.Random(seed), datetime.now(UTC))
    rng, now = world.rng, world.now
    statuses = ["active"] * 7 + ["deactivated", "suspended"]
    limited = {2, 5, 10}  # a reader among them (readers are the first active ones of each context)
    for i, (context, status) in enumerate(
        [("professional", s) for s in statuses] + [("personal", "active"), ("personal", "active")]
    ):
        persona = PersonaReplica(
            id=uuid.uuid4(),
            context=context,
            handle=f"p{seed}x{i}",
            display_name=rng.choice(TRICKY) + f" {i}",
            status=status,
            limited=i in limited,
            limited_at=now if i in limited else None,
            updated_at=now,
        )
        world.personas[persona.id] = persona
    for context, visibility, moderated in [
        ("professional", "open", None),
        ("professional", "closed", None),
        ("professional", "secret", None),
        ("professional", "open", None),
        ("professional", "open", "hidden"),
        ("professional", "closed", "removed"),
        ("personal", "closed", None),
        ("personal", "closed", "hidden"),
    ]:
        world.groups.append(
            GroupReplica(
                id=uuid.uuid4(), context=context, visibility=visibility, moderation=moderated, updated_at=now
            )
        )
    async with suite.feed.state.database.sessionmaker() as session, session.begin():
        session.add_all(world.personas.values())
        session.add_all(world.groups)
        everyone = [*world.personas, world.missing]
        for follower in world.personas:
            for followee in everyone:
                if followee != follower and rng.random() < 0.3:
                    session.add(Follow(follower_id=follower, followee_id=followee))
        for persona in world.personas.values():
            for group in world.groups:
                if group.context == persona.context and rng.random() < 0.4:
                    session.add(MembershipReplica(persona_id=persona.id, group_id=group.id))
        for _ in range(80):
            session.add(_random_post(world))
        ordered = list(world.personas)
        for i in sorted(limited)[:2]:  # announcements of limited authors lead no home timeline
            session.add(_announcement(world, ordered[i]))
    active = [p for p in world.personas.values() if p.status == "active"]
    chosen = [p for p in active if p.context == "professional"][:4] + [
        p for p in active if p.context == "personal"
    ][:1]
    world.readers = [
        Reader(p.id, p.context, token_with_roles(suite, str(p.id), context=p.context)) for p in chosen
    ]
    async with suite.feed.state.database.sessionmaker() as session, session.begin():
        for reader in world.readers:
            for post in rng.sample(world.posts, 15):
                for kind in rng.sample(REACTION_KINDS, rng.randint(1, 3)):
                    session.add(Reaction(post_id=post.id, persona_id=reader.persona, kind=kind))
    return world


def _random_post(world: World) -> Post:
    rng, now = world.rng, world.now
    author = rng.choice([*world.personas, world.missing])
    context = world.context_of(author)
    audience = rng.choice(["organisation", "organisation", "followers", "group", "group"])
    groups = [g for g in world.groups if g.context == context]
    group = rng.choice(groups) if audience == "group" else None
    live_pins = sum(
        1 for p in world.posts if p.context == context and p.pinned_until and p.pinned_until > now
    )
    pinned_until = None
    if audience == "organisation" and rng.random() < 0.15:
        ended = live_pins >= 3 or rng.random() < 0.3
        pinned_until = now + timedelta(minutes=rng.randint(-300, -1) if ended else rng.randint(30, 600))
    edited = rng.random() < 0.2
    mentioned = rng.sample(list(world.personas.values()), rng.randint(0, 2))
    moderated = rng.choice([None] * 7 + ["hidden", "held", "removed"])
    deleted = moderated == "removed" or rng.random() < 0.1
    post = Post(
        id=new_id(),
        author_id=author,
        context=context,
        audience=audience,
        group_id=group.id if group else None,
        body=rng.choice(TRICKY) + f" #{len(world.posts)}",
        mentions=[{"id": str(p.id), "handle": p.handle} for p in mentioned],
        tags=rng.sample(["news", "ops", "team"], rng.randint(0, 2)),
        links=[{"url": 'https://x.example/a?q="1"', "title": rng.choice([None, 'A "B"'])}]
        if rng.random() < 0.3
        else [],
        pinned_until=pinned_until,
        group_pinned_at=now - timedelta(minutes=rng.randint(1, 100))
        if group and rng.random() < 0.2
        else None,
        comment_count=rng.randint(0, 3),
        created_at=now,
        updated_at=now.replace(microsecond=0) if edited else now,
        edited_at=now.replace(microsecond=0) if edited else None,
        deleted_at=now if deleted else None,
        moderation=moderated,
        moderated_at=now if moderated else None,
        locked_at=now if rng.random() < 0.15 else None,
        **{f"{kind}_count": rng.randint(0, 4) for kind in REACTION_KINDS},
    )
    world.posts.append(post)
    return post


def _announcement(world: World, author: uuid.UUID) -> Post:
    post = Post(
        id=new_id(),
        author_id=author,
        context=world.context_of(author),
        audience="organisation",
        body=f"announcement #{len(world.posts)}",
        pinned_until=world.now + timedelta(hours=1),
        created_at=world.now,
        updated_at=world.now,
    )
    world.posts.append(post)
    return post


async def _change(suite: Any, world: World) -> None:
    """After the readers' first pages: changes made as the write side makes them (PostgreSQL's
    inboxes are kept in the same transactions)."""
    rng = world.rng
    database = suite.feed.state.database
    for _ in range(30):
        async with database.sessionmaker() as session, session.begin():
            post = _random_post(world)
            session.add(post)
            await session.flush()
            await inbox.fan_out(session, post)
    first, second = world.readers[0].persona, world.readers[1].persona
    async with database.sessionmaker() as session, session.begin():
        await inbox.drop(session, first)  # first: the inbox lock before any row lock
        followed = {f.followee_id for f in (await session.execute(_follows(first))).scalars()}
        newly = [p for p in world.personas if p != first and p not in followed]
        session.add(Follow(follower_id=first, followee_id=rng.choice(newly)))
    async with database.sessionmaker() as session, session.begin():
        await inbox.drop(session, second)
        await session.execute(delete(MembershipReplica).where(col(MembershipReplica.persona_id) == second))
    async with database.sessionmaker() as session, session.begin():
        for post in rng.sample(world.posts, 5):
            await session.execute(update(Post).where(col(Post.id) == post.id).values(deleted_at=world.now))
        pinned = [p for p in world.posts if p.pinned_until and p.pinned_until > world.now]
        for post in pinned[:1]:
            ended = world.now - timedelta(minutes=1)
            await session.execute(update(Post).where(col(Post.id) == post.id).values(pinned_until=ended))
        author = next(
            p
            for p in world.personas.values()
            if p.status == "active" and p.id not in {r.persona for r in world.readers}
        )
        await session.execute(
            update(PersonaReplica).where(col(PersonaReplica.id) == author.id).values(status="deactivated")
        )
    await _moderate(suite, world)


async def _moderate(suite: Any, world: World) -> None:
    """Moderation's actions, applied by the flows its events run (``services.feed.moderation``):
    a removed post and a hidden one restored, a post hidden, a held one released, a reader
    limited and another's limit lifted."""
    database, outbox = suite.feed.state.database, suite.feed.state.outbox
    at = datetime.now(UTC)
    readers = {reader.persona for reader in world.readers}
    authored = [p for p in world.posts if p.author_id in readers]
    async with database.sessionmaker() as session, session.begin():
        undo: list[tuple[str, ContentAction]] = [
            ("removed", "restored"),
            ("hidden", "restored"),
            ("held", "released"),
        ]
        for state, action in undo:
            post = next(p for p in reversed(authored) if p.moderation == state)
            await moderation.moderate_post(session, outbox, post.id, action, at)
        post = next(p for p in reversed(authored) if p.moderation is None and p.deleted_at is None)
        await moderation.moderate_post(session, outbox, post.id, "hidden", at)
        limited = [r.persona for r in world.readers if world.personas[r.persona].limited]
        unlimited = [r.persona for r in world.readers if not world.personas[r.persona].limited]
        await moderation.limit_persona(session, limited[0], False, at)
        await moderation.limit_persona(session, unlimited[0], True, at)


def _follows(persona: uuid.UUID) -> Any:
    return select(Follow).where(col(Follow.follower_id) == persona)


async def _by_the_rule(suite: Any, reader: Reader) -> tuple[list[str], dict[str, Any]]:
    """The reader's whole home by the SQLAlchemy rule (what SQLite and the stream read): the
    post ids in page order and each post as ``post_public`` writes it. The rule with the sources
    as lists and as subqueries must agree, and every post must be visible to the reader."""
    principal, now = reader.principal, datetime.now(UTC)
    async with suite.feed.state.database.sessionmaker() as session:
        sources = await home_sources(session, principal)
        pages = []
        for condition in (home_condition(principal, now), home_condition(principal, now, sources)):
            rows, leading = await page_of_posts(
                session, principal, condition, before=None, limit=1000, lead=home_lead(principal, now)
            )
            pages.append([*leading, *rows])
        ids = [str(row[0].id) for row in pages[0]]
        assert ids == [str(row[0].id) for row in pages[1]]
        visible = (
            await session.execute(
                posts_for(principal).where(
                    col(Post.id).in_([row[0].id for row in pages[0]]), visible_to(principal)
                )
            )
        ).all()
    assert {str(row[0].id) for row in visible} == set(ids)
    return ids, {str(row[0].id): json.loads(post_public(row, now).model_dump_json()) for row in pages[0]}


async def _walk(suite: Any, reader: Reader, limit: int) -> list[dict[str, Any]]:
    """Every page of the reader's home timeline through the API."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        resp = await suite.client.get(HOME, params=params, headers=auth(reader.token))
        assert resp.status_code == 200, resp.text
        items += resp.json()["items"]
        cursor = resp.json()["next_cursor"]
        if cursor is None:
            return items


async def _streamed(suite: Any, reader: Reader) -> dict[str, Any]:
    """Every post the event stream sends the reader from the start, by id."""
    headers = {**auth(reader.token), "Last-Event-ID": FROM_THE_START}
    resp = await suite.client.get(STREAM, headers=headers)
    assert resp.status_code == 200, resp.text
    posts = {}
    for block in resp.text.split("\n\n"):
        # Lines end at "\n" only: a body may hold U+2028, which str.splitlines would split at.
        fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        if fields.get("event") == "post":
            data = json.loads(fields["data"])
            posts[data["id"]] = data
    return posts


def _assert_same(
    reader: Reader, path: str, items: list[dict[str, Any]], ids: list[str], shapes: dict[str, Any]
) -> None:
    assert [item["id"] for item in items] == ids, (path, reader.persona)
    for item in items:
        assert item == shapes[item["id"]], (path, item["id"])


@pytest.mark.parametrize("seed", SEEDS)
async def test_every_home_path_shows_what_the_rule_shows(suite, seed):
    """The home timeline through the API (PostgreSQL: from the inboxes and below them; SQLite:
    the SQLAlchemy rule), the event stream and the rule itself agree, before and after the
    world changes."""
    settings = suite.feed.state.settings
    settings.home_inbox_size = 12  # floors within reach: pages cross them
    settings.stream_max_seconds, settings.stream_poll_seconds = 1.0, 0.05
    world = await _generate(suite, seed)
    for round_ in ("built", "changed"):
        if round_ == "changed":
            await _change(suite, world)
        expected = {reader.persona: await _by_the_rule(suite, reader) for reader in world.readers}
        assert any(len(ids) > 12 for ids, _ in expected.values()), "a world too small to cross a floor"
        for reader in world.readers:
            ids, shapes = expected[reader.persona]
            _assert_same(reader, f"home {round_}", await _walk(suite, reader, limit=5), ids, shapes)
        streamed = await asyncio.gather(*(_streamed(suite, reader) for reader in world.readers))
        for reader, posts in zip(world.readers, streamed, strict=True):
            ids, shapes = expected[reader.persona]
            assert set(posts) == set(ids), (round_, reader.persona)
            for post_id, data in posts.items():
                assert data == shapes[post_id], (round_, post_id)


@pytest.mark.postgres
@pytest.mark.parametrize("seed", SEEDS)
async def test_postgresql_reads_on_demand_what_its_inboxes_hold(suite, seed, monkeypatch):
    """PostgreSQL's two ways to a page (its inboxes, and its statements on demand) each show
    what the rule shows, whether the inbox was built before the world changed or after."""
    suite.feed.state.settings.home_inbox_size = 12
    world = await _generate(suite, seed)
    for reader in world.readers:  # inboxes built now, kept up to date through the changes
        assert (await suite.client.get(HOME, headers=auth(reader.token))).status_code == 200
    await _change(suite, world)
    expected = {reader.persona: await _by_the_rule(suite, reader) for reader in world.readers}
    for reader in world.readers:
        ids, shapes = expected[reader.persona]
        _assert_same(reader, "inbox", await _walk(suite, reader, limit=7), ids, shapes)

    async def no_inbox(*args: Any, **kwargs: Any) -> bool:
        return False

    monkeypatch.setattr(inbox, "build", no_inbox)
    database = suite.feed.state.database
    for reader in world.readers:
        async with database.sessionmaker() as session, session.begin():
            await inbox.drop(session, reader.persona)
        ids, shapes = expected[reader.persona]
        _assert_same(reader, "on demand", await _walk(suite, reader, limit=7), ids, shapes)


def _keys(model: type[Any]) -> set[str]:
    return set(model.model_fields)


def test_the_databases_document_writes_every_field_of_a_post():
    """PostgreSQL writes each home item's JSON itself (``home_sql.DOCUMENT``), built from
    ``PostPublic``'s fields: every field of the shape, nested ones too, is a key it writes."""
    for model in (PostPublic, AuthorPublic, ReactionsPublic):
        for name in _keys(model):
            assert f'"{name}":' in home_sql.DOCUMENT, (model.__name__, name)
    for kind in REACTION_KINDS:
        assert f'"{kind}":' in home_sql.DOCUMENT
