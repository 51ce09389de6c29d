"""The benchmark's data, written straight into the databases (no HTTP, no events): 10,000
personas with a first and a last name (in identity's tables when given its database, and in
feed's replica), about 100 follows each (100 of them follow only 3), 200 groups of 20 to 2,000
members, and posts added in steps up to the largest size.

Post bodies draw on a controlled vocabulary, so that searches have known answers at every size
(``SEARCH_WORDS``): a common word in about 5 % of posts, a rare word in one post in 10,000, a
two-word phrase whose words also appear apart, and 10 % of posts in French (``lang`` "fr",
French words) when the post table has a ``lang`` column.

Rows are built from the services' own table definitions, so a column a service adds later gets
its default (or NULL) without this file knowing about it; a column the database computes (a
generated column, such as a full-text document) is left to the database."""

from __future__ import annotations

import json
import math
import os
import random
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, MetaData, Table, create_engine, event, text
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
WORDS_FR = [
    "équipe",
    "projet",
    "réunion",
    "réunions",
    "politique",
    "révision",
    "brouillon",
    "budget",
    "service",
    "citoyens",
    "rapport",
    "données",
    "livraison",
    "risque",
    "changement",
    "numérique",
    "formation",
    "atelier",
    "conseils",
    "retours",
    "démarche",
    "écologique",
]
FRENCH_SHARE = 0.10  # posts written in French (``lang`` "fr")

# The searched words: none is among the filler words above, and none holds another.
COMMON_WORD = "accessibility"  # in about 5 % of posts
COMMON_SHARE = 0.05
RARE_WORD = "zeppelin"  # in one post in RARE_EVERY, always to the organisation
RARE_EVERY = 10_000
PHRASE = ("carbon", "neutral")  # together in 0.5 % of posts, and each alone in 1 % more
PHRASE_SHARE = 0.005
PHRASE_WORD_SHARE = 0.01
SEARCH_WORDS = {
    "common": COMMON_WORD,
    "rare": RARE_WORD,
    "phrase": " ".join(PHRASE),
    "french": "réunion",
}

FIRST_NAMES = [
    "Margaret", "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Nancy", "Daniel", "Lisa", "Matthew", "Betty", "Anthony",
    "Sandra", "Mark", "Ashley", "Steven", "Kimberly", "Paul", "Emily", "Andrew", "Donna", "Joshua",
    "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Melissa", "George", "Deborah",
    "Timothy", "Stephanie", "Ronald", "Rebecca", "Jason", "Laura", "Edward", "Helen", "Jeffrey",
    "Sharon", "Ryan", "Cynthia", "Jacob", "Kathleen", "Gary", "Amy", "Nicholas", "Shirley", "Eric",
    "Angela", "Jonathan", "Anna", "Stephen", "Ruth", "Larry", "Brenda", "Justin", "Pamela", "Scott",
    "Nicole", "Brandon", "Katherine", "Samantha", "Frank", "Christine", "Gregory", "Catherine",
    "Raymond", "Virginia", "Hélène", "François", "Chloé", "Benoît", "Gaëlle", "Jérôme", "Élodie",
    "Aurélien", "Céline", "Mathéo", "Noémie", "Siobhan", "Aoife", "Priya", "Arjun", "Mei", "Wei",
]  # fmt: skip
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark",
    "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres",
    "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell",
    "Mitchell", "Carter", "Roberts", "Evans", "Turner", "Phillips", "Parker", "Collins", "Edwards",
    "Stewart", "Morris", "Murphy", "Cook", "Rogers", "Morgan", "Cooper", "Peterson", "Reed",
    "Bailey", "Bell", "Kelly", "Howard", "Ward", "Cox", "Richardson", "Wood", "Watson", "Brooks",
    "Bennett", "Gray", "Hughes", "Price", "Sanders", "Myers", "Long", "Ross", "Foster", "Dubois",
    "Lefèvre", "Moreau", "Girard", "Bonnet", "Mercier", "Lemaître", "Fontaine", "Chevalier",
    "O'Brien", "Fitzgerald", "McCarthy", "Patel", "Sharma", "Chen", "Wang", "Kowalski",
]  # fmt: skip
JOB_TITLES = [
    "Policy Adviser", "Senior Policy Adviser", "Data Analyst", "Data Scientist", "Software Developer",
    "Delivery Manager", "Product Manager", "User Researcher", "Content Designer", "Service Designer",
    "Finance Officer", "HR Business Partner", "Procurement Officer", "Communications Lead",
    "Legal Counsel", "Statistician", "Economist", "Project Coordinator", "Records Manager",
    "Chargée de mission", "Responsable des achats", "Analyste de données",
]  # fmt: skip
DEPARTMENTS = [
    "Digital Services", "Finance", "Human Resources", "Legal", "Communications", "Policy Unit",
    "Procurement", "Statistics", "Estates", "Customer Service", "Direction du numérique",
]  # fmt: skip
SKILLS = [
    "Python", "SQL", "Accessibility", "User research", "Budgeting", "Contract management",
    "Negotiation", "Public speaking", "Data visualisation", "Statistics", "Agile delivery",
    "Stakeholder management", "Writing", "Translation", "Gestion de projet", "Économie",
]  # fmt: skip
PEOPLE_QUERY = "Margret Smyth"  # a misspelled name: there are Margarets, Smiths and Margaret Smiths


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
    value of its type (NULL for a JSON column that allows it: a persona's ``avatar``), else
    NULL."""
    values: dict[str, Any] = {}
    for column in table.columns:
        if column.computed is not None:  # generated by the database from other columns
            continue
        default = column.default
        if default is not None and getattr(default, "is_scalar", False):
            values[column.name] = default.arg  # type: ignore[attr-defined]
        elif isinstance(column.type, JSON):
            values[column.name] = None if column.nullable else []
        elif isinstance(column.type, Boolean):
            values[column.name] = False
        elif isinstance(column.type, Integer) and not column.nullable:
            values[column.name] = 0
        else:
            values[column.name] = None
    return values


def insert_rows(
    engine: Engine,
    name: str,
    rows: Iterator[dict[str, Any]],
    chunk: int = 5_000,
    *,
    metadata: MetaData = FeedModel.metadata,
) -> int:
    table = metadata.tables[name]
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
    engine = create_engine(sync_url(url))
    if engine.dialect.name == "sqlite":
        _search_functions(engine)
    return engine


def _search_functions(engine: Engine) -> None:
    """On SQLite, the SQL functions the full-text index's triggers call, as the services
    register them on each of their connections (``kit.search.register_sqlite``), when there is
    such an index."""
    try:
        from kit.search import register_sqlite  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return

    @event.listens_for(engine, "connect")
    def _register(dbapi_connection: Any, _record: Any) -> None:
        register_sqlite(dbapi_connection)


def handle_for(first: str, last: str, n: int) -> str:
    """A handle from a name: ``first_last_n``, ASCII lower case (identity's handle rule)."""
    folded = unicodedata.normalize("NFKD", f"{first}_{last}").encode("ascii", "ignore").decode().lower()
    return "".join(c for c in folded if c.isalnum() or c == "_")[:24] + f"_{n}"


@dataclass(frozen=True)
class Person:
    handle: str
    display_name: str
    job_title: str
    department: str
    skills: list[str]


def profiles_of(rng: random.Random) -> list[Person]:
    """A first and a last name for each persona, and a profile. Persona 2 is Margaret Smith, so
    that the misspelled ``PEOPLE_QUERY`` has its exact person besides the many near ones."""
    found = []
    for n in range(PERSONAS):
        first, last = ("Margaret", "Smith") if n == 2 else (rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))
        found.append(
            Person(
                handle=handle_for(first, last, n),
                display_name=f"{first} {last}",
                job_title=rng.choice(JOB_TITLES),
                department=rng.choice(DEPARTMENTS),
                skills=rng.sample(SKILLS, rng.randint(0, 4)),
            )
        )
    return found


def write_identity(url: str, personas: list[uuid.UUID], profiles: list[Person]) -> None:
    """The personas in identity's own tables, each with an active account (the persona
    directory and its search read only those), so that identity answers about the same
    people feed knows."""
    from services.identity.models import IdentityModel

    engine = engine_for(url)
    accounts = [uuid.UUID(int=pid.int ^ (1 << 70)) for pid in personas]  # distinct, as deterministic
    insert_rows(
        engine,
        "account",
        (
            {
                "id": account,
                "email": f"{profile.handle}@example.gov",
                "password_hash": "!bench: no password",
                "status": "active",
                "roles": [],
                "created_at": EPOCH,
                "updated_at": EPOCH,
                "password_changed_at": EPOCH,
            }
            for account, profile in zip(accounts, profiles, strict=True)
        ),
        metadata=IdentityModel.metadata,
    )
    insert_rows(
        engine,
        "persona",
        (
            {
                "id": pid,
                "account_id": account,
                "kind": "professional",
                "handle": profile.handle,
                "display_name": profile.display_name,
                "job_title": profile.job_title,
                "department": profile.department,
                "skills": profile.skills,
                "interests": [],
                "discoverable": True,
                "status": "active",
                "moderation_hold": False,
                "created_at": EPOCH,
            }
            for pid, account, profile in zip(personas, accounts, profiles, strict=True)
        ),
        metadata=IdentityModel.metadata,
    )
    analyze(engine)
    engine.dispose()


def populate(url: str, seed: int = 7, *, identity_url: str | None = None) -> World:
    """The personas, follows, groups and memberships in feed's database (at ``url``); the
    personas also in identity's (``identity_url``), when given."""
    rng = random.Random(seed)
    engine = engine_for(url)
    now = datetime.now(UTC)
    personas = [uuid7(EPOCH - timedelta(seconds=i), rng) for i in range(PERSONAS)]
    profiles = profiles_of(random.Random(seed + 1))
    insert_rows(
        engine,
        "persona_replica",
        (
            {
                "id": pid,
                "context": "professional",
                "handle": profile.handle,
                "display_name": profile.display_name,
                "status": "active",
                "updated_at": now,
            }
            for pid, profile in zip(personas, profiles, strict=True)
        ),
    )
    if identity_url is not None:
        write_identity(identity_url, personas, profiles)
    dense, sparse = personas[0], personas[1]
    sparse_set = set(personas[1 : 1 + SPARSE_FOLLOWERS])

    def follows() -> Iterator[dict[str, Any]]:
        for pid in personas:
            wanted = 3 if pid in sparse_set else FOLLOWS_EACH
            for other in rng.sample(personas, wanted + 1):
                if other != pid and wanted:
                    wanted -= 1
                    yield {"follower_id": pid, "followee_id": other, "created_at": now}

    insert_rows(engine, "follow", follows())
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
    insert_rows(
        engine,
        "group_replica",
        (
            {
                "id": gid,
                "context": "professional",
                "handle": f"group_{g}",
                "visibility": "open",
                "archived": False,
                "updated_at": now,
            }
            for g, gid in enumerate(groups)
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

    insert_rows(engine, "membership_replica", memberships())
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
            lang = "fr" if rng.random() < FRENCH_SHARE else "en"
            body = text_of(rng, lang, n)
            if RARE_WORD in body:  # every reader sees it, so that each size has its answer
                group_id, audience = None, "organisation"
            yield {
                "id": uuid7(at, rng),
                "author_id": author,
                "context": "professional",
                "audience": audience,
                "group_id": group_id,
                "body": body,
                "lang": lang,
                "created_at": at,
                "updated_at": at,
            }

    added = insert_rows(engine, "post", posts(), chunk=10_000)
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


def text_of(rng: random.Random, lang: str, n: int) -> str:
    """The body of the ``n``-th post: 8 to 30 filler words of its language, and the searched
    words at their shares (``SEARCH_WORDS``) at random places."""
    words = rng.choices(WORDS_FR if lang == "fr" else WORDS, k=rng.randint(8, 30))

    def put(*inserted: str) -> None:
        at = rng.randint(0, len(words))
        words[at:at] = inserted

    if rng.random() < COMMON_SHARE:
        put(COMMON_WORD)
    if n % RARE_EVERY == RARE_EVERY // 2:
        put(RARE_WORD)
    draw = rng.random()
    if draw < PHRASE_SHARE:
        put(*PHRASE)
    elif draw < PHRASE_SHARE + PHRASE_WORD_SHARE:
        put(PHRASE[0])
    elif draw < PHRASE_SHARE + 2 * PHRASE_WORD_SHARE:
        put(PHRASE[1])
    return " ".join(words)


def analyze_inboxes(url: str) -> None:
    """Brings the planner's statistics of the home inboxes up to date, as autovacuum does once
    tables have grown: the benchmark builds the readers' inboxes just before it measures, and
    statistics taken while the tables were empty would leave the feed's cached plans reading a
    reader's whole inbox for every page."""
    engine = engine_for(url)
    if engine.dialect.name == "postgresql":  # SQLite has no inboxes (it reads on demand)
        analyze(engine, "home_inbox", "home_entry")
    engine.dispose()


def newest_posts(url: str, audience: str, count: int) -> list[uuid.UUID]:
    """The ids of the newest ``count`` posts of ``audience`` (professional: the dataset's only
    context), newest first."""
    engine = engine_for(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id FROM post WHERE audience = :audience ORDER BY id DESC LIMIT :count"),
            {"audience": audience, "count": count},
        )
        ids = [uuid.UUID(str(row[0])) for row in rows]
    engine.dispose()
    return ids


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
