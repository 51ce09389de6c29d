"""The benchmark's data, written straight into feed's database (no HTTP, no events): 10,000
personas, about 100 follows each (100 of them follow only 3), 200 groups of 20 to 2,000
members, and posts added in steps up to the largest size.

Rows are built from the feed's own table definitions, so a column the feed adds later gets
its default (or NULL) without this file knowing about it."""

from __future__ import annotations

import json
import math
import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, Table, create_engine, text
from sqlalchemy.engine import Engine

from services.feed.models import FeedModel

PERSONAS = 10_000
FOLLOWS_EACH = 100
SPARSE_FOLLOWERS = 100  # personas that follow only 3 others
GROUPS = 200
EPOCH = datetime.now(UTC) - timedelta(days=400)
SPACING = timedelta(days=399) / 1_000_000  # a million posts fill the 399 days before today

WORDS = [
    "team",
    "project",
    "update",
    "meeting",
    "policy",
    "review",
    "draft",
    "budget",
    "service",
    "citizens",
    "report",
    "data",
    "delivery",
    "plan",
    "risk",
    "change",
    "digital",
    "training",
    "workshop",
    "guidance",
    "release",
    "feedback",
]


def uuid7(at: datetime, rng: random.Random) -> uuid.UUID:
    """A UUIDv7 for a given time, so that id order is time order as in the feed."""
    ms = int(at.timestamp() * 1000)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= rng.getrandbits(12) << 64
    value |= 0b10 << 62
    value |= rng.getrandbits(62)
    return uuid.UUID(int=value)


@dataclass
class World:
    personas: list[uuid.UUID]
    groups: list[uuid.UUID]
    members: dict[uuid.UUID, list[uuid.UUID]]
    dense: uuid.UUID
    sparse: uuid.UUID
    small_group: uuid.UUID  # 20 members
    large_group: uuid.UUID  # 2,000 members
    posts: int = 0
    groups_of: dict[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)


def sync_url(url: str) -> str:
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def _filler(table: Table) -> dict[str, Any]:
    """A value for every column this file does not set: its scalar default, else an empty
    value of its type, else NULL."""
    values: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if default is not None and getattr(default, "is_scalar", False):
            values[column.name] = default.arg  # type: ignore[attr-defined]
        elif isinstance(column.type, JSON):
            values[column.name] = []
        elif isinstance(column.type, Boolean):
            values[column.name] = False
        elif isinstance(column.type, Integer) and not column.nullable:
            values[column.name] = 0
        else:
            values[column.name] = None
    return values


def _insert(engine: Engine, name: str, rows: Iterator[dict[str, Any]], chunk: int = 5_000) -> int:
    table = FeedModel.metadata.tables[name]
    base = _filler(table)
    count = 0
    batch: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for row in rows:
            batch.append({**base, **{k: v for k, v in row.items() if k in base}})
            if len(batch) >= chunk:
                conn.execute(table.insert(), batch)
                count += len(batch)
                batch = []
        if batch:
            conn.execute(table.insert(), batch)
            count += len(batch)
    return count


def engine_for(url: str) -> Engine:
    return create_engine(sync_url(url))


def populate(url: str, seed: int = 7) -> World:
    rng = random.Random(seed)
    engine = engine_for(url)
    now = datetime.now(UTC)
    personas = [uuid7(EPOCH - timedelta(seconds=i), rng) for i in range(PERSONAS)]
    _insert(
        engine,
        "persona_replica",
        (
            {
                "id": pid,
                "context": "professional",
                "handle": f"person_{i}",
                "display_name": f"Person {i}",
                "status": "active",
                "updated_at": now,
            }
            for i, pid in enumerate(personas)
        ),
    )
    dense, sparse = personas[0], personas[1]
    sparse_set = set(personas[1 : 1 + SPARSE_FOLLOWERS])

    def follows() -> Iterator[dict[str, Any]]:
        for pid in personas:
            wanted = 3 if pid in sparse_set else FOLLOWS_EACH
            for other in rng.sample(personas, wanted + 1):
                if other != pid and wanted:
                    wanted -= 1
                    yield {"follower_id": pid, "followee_id": other, "created_at": now}

    _insert(engine, "follow", follows())
    groups = [uuid7(EPOCH - timedelta(minutes=g), rng) for g in range(GROUPS)]
    sizes = [20, 2000] + [int(math.exp(rng.uniform(math.log(20), math.log(2000)))) for _ in groups[2:]]
    members: dict[uuid.UUID, list[uuid.UUID]] = {}
    candidates = [p for p in personas if p not in sparse_set]
    for gid, size in zip(groups, sizes, strict=True):
        chosen = rng.sample(candidates, size)
        members[gid] = chosen
    # the dense persona is in five groups, the large one among them; the sparse one in none
    for gid in groups[1:6]:
        if dense not in members[gid]:
            members[gid][-1] = dense
    for gid in groups[:1] + groups[6:]:
        members[gid] = [m for m in members[gid] if m != dense] or members[gid]
    _insert(
        engine,
        "group_replica",
        (
            {"id": gid, "context": "professional", "visibility": "open", "archived": False, "updated_at": now}
            for gid in groups
        ),
    )
    joined = EPOCH - timedelta(days=1)

    def memberships() -> Iterator[dict[str, Any]]:
        for gid, people in members.items():
            for position, pid in enumerate(people):
                role = "owner" if position == 0 else "member"
                yield {
                    "persona_id": pid,
                    "group_id": gid,
                    "role": role,
                    "joined_at": joined,
                    "updated_at": now,
                }

    _insert(engine, "membership_replica", memberships())
    world = World(personas, groups, members, dense, sparse, groups[0], groups[1])
    for gid, people in members.items():
        for pid in people:
            world.groups_of.setdefault(pid, []).append(gid)
    analyze(engine)
    engine.dispose()
    return world


def add_posts(url: str, world: World, target: int, seed: int = 11, *, spacing: timedelta = SPACING) -> int:
    """Adds posts until there are ``target``; newer than every earlier one, as in life. The
    ``n``-th post is written at ``EPOCH + spacing * n`` (by default a million fill the 399 days
    before today)."""
    rng = random.Random(seed + world.posts)
    engine = engine_for(url)
    start = world.posts

    def posts() -> Iterator[dict[str, Any]]:
        for n in range(start, target):
            at = EPOCH + spacing * n
            author = world.personas[rng.randrange(PERSONAS)]
            group_id = None
            audience = "organisation" if rng.random() < 0.8 else "followers"
            mine = world.groups_of.get(author)
            if mine and rng.random() < 0.25:
                group_id, audience = rng.choice(mine), "group"
            body = " ".join(rng.choices(WORDS, k=rng.randint(8, 30)))
            yield {
                "id": uuid7(at, rng),
                "author_id": author,
                "context": "professional",
                "audience": audience,
                "group_id": group_id,
                "body": body,
                "created_at": at,
                "updated_at": at,
            }

    added = _insert(engine, "post", posts(), chunk=10_000)
    world.posts = target
    # Posts written here skip the feed's fan-out, so the readers' home inboxes (PostgreSQL;
    # decision 0012) no longer hold every post of their rule: they go, and the next first page
    # builds each again, as after any change behind the service's back.
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM home_inbox"))
        conn.execute(text("DELETE FROM home_entry"))
    analyze(engine)
    engine.dispose()
    return added


def analyze_inboxes(url: str) -> None:
    """Brings the planner's statistics of the home inboxes up to date, as autovacuum does once
    tables have grown: the benchmark builds the readers' inboxes just before it measures, and
    statistics taken while the tables were empty would leave the feed's cached plans reading a
    reader's whole inbox for every page."""
    engine = engine_for(url)
    if engine.dialect.name == "postgresql":  # SQLite has no inboxes (it reads on demand)
        analyze(engine, "home_inbox", "home_entry")
    engine.dispose()


def analyze(engine: Engine, *tables: str) -> None:
    """Statistics for the planner: of ``tables``, or of every table (vacuumed too on PostgreSQL)."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            statement = f"ANALYZE {', '.join(tables)}" if tables else "VACUUM ANALYZE"
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text(statement))
        else:
            for table in tables or ("",):  # SQLite's ANALYZE takes one name, or none
                conn.execute(text(f"ANALYZE {table}"))
            conn.commit()


def describe(world: World) -> dict[str, Any]:
    return {
        "personas": len(world.personas),
        "follows_each": FOLLOWS_EACH,
        "sparse_personas_follow": 3,
        "groups": len(world.groups),
        "group_sizes": sorted(len(m) for m in world.members.values())[:: max(1, GROUPS // 10)],
        "dense_persona": {"follows": FOLLOWS_EACH, "groups": len(world.groups_of.get(world.dense, []))},
        "sparse_persona": {"follows": 3, "groups": len(world.groups_of.get(world.sparse, []))},
        "posts": world.posts,
        "seed": int(os.environ.get("BENCH_SEED", "7")),
    }


def dump(world: World) -> str:
    return json.dumps(describe(world))
