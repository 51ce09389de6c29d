"""Home inboxes: each reader's home timeline precomputed as post ids (PostgreSQL only; decision
0012).

The rule an inbox keeps: **it holds every post of the home rule (own posts, posts of followed
personas, posts in the reader's groups; deleted ones aside) whose id is at least its floor**, for
the reader's followees and groups as they are now. Reads filter what may change without the
rule changing (an author deactivated, a post deleted or pinned) and go on below the floor with
the on-demand query of decision 0006. The rule's SQL, and every statement below that uses it,
is in ``services.feed.home_sql``. Three writers keep the rule:

- ``build`` fills a reader's inbox with the newest ``size`` posts of the rule when the reader
  opens the home timeline without one;
- ``fanning_out`` adds a new post to the inboxes of its readers (followers or group members,
  and the author) in the transaction that creates it, in the statement of its events, and
  ``fan_out`` a post moderation removed to them again in the transaction that restores it
  (inboxes built meanwhile left it out; decision 0032);
- ``drop`` deletes a reader's inbox in the transaction that changes the reader's followees or
  groups (it is built again, from the new sources, at the next read);
- ``forget`` deletes the entries of posts destroyed for good (records' disposition, decision
  0033) from every inbox: the rule holds no post that is no more.

Advisory locks order them, one per stripe of readers (``STRIPES``). Fan-out and ``drop``
take every stripe's shared, always in the same order (a new post takes them with its own row,
``SHARED_LOCK``, before the statement of its fan-out); ``build`` takes its reader's stripe
exclusive. A build therefore waits for the posting and following transactions in flight and
sees what they committed, and those that start later wait for the build and then see the new
inbox: without it a post committed while an inbox is being built is in neither (the build's
snapshot misses the post, the post's fan-out misses the inbox). Builds of readers of different
stripes run side by side; a build waits ``BUILD_LOCK_TIMEOUT`` at most, after which the page is
read on demand and the inbox built at a later first page. Builds are rare (a reader's first read
of the day), each a few milliseconds; posting waits that long at worst.

Entries carry their inbox's ``built_at``: retention deletes inboxes after ``home_inbox_hours``
and then their entries (and any a dropped inbox left behind); a build deletes the reader's old
entries first.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, column, delete, exists, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.db import Database
from kit.db_errors import sqlstate
from kit.housekeeping import Retention
from kit.outbox import Then
from services.feed import home_sql
from services.feed.models import HomeEntry, HomeInbox, Post
from services.feed.timelines import BY_GROUP

log = logging.getLogger(__name__)

# The advisory locks' first key ("home" in ASCII); the second is the stripe.
LOCK_SPACE = 0x686F6D65
STRIPES = 16
BUILD_LOCK_TIMEOUT = "2s"
LOCK_NOT_AVAILABLE = "55P03"  # the SQLSTATE of a lock_timeout

# Every stripe, in one order (so that two transactions taking them cannot deadlock).
_SHARED_SQL = (
    "SELECT count(pg_advisory_xact_lock_shared(:space, s)) AS held FROM generate_series(0, :stripes - 1) AS s"
)
_SHARED = text(_SHARED_SQL).bindparams(space=LOCK_SPACE, stripes=STRIPES)
# The same, for a statement to select from (one row): the locks are held once it has run, and
# every later statement of the transaction reads with them held. A lock taken by the fan-out's
# own statement would not do: its snapshot is older than the lock's wait.
SHARED_LOCK = (
    text(_SHARED_SQL).bindparams(space=LOCK_SPACE, stripes=STRIPES).columns(column("held")).cte("home_lock")
)
_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(:space, :stripe)")
_LOCK_TIMEOUT = text(f"SET LOCAL lock_timeout = '{BUILD_LOCK_TIMEOUT}'")
_DROP = text("DELETE FROM home_inbox WHERE reader_id = :reader")
_FAN_OUT = {sql: text(sql) for sql in (home_sql.FAN_OUT_BY_AUTHOR, home_sql.FAN_OUT_BY_GROUP)}
_EXISTING = text("SELECT floor_id FROM home_inbox WHERE reader_id = :reader")
_CLEAR = text("DELETE FROM home_entry WHERE reader_id = :reader")
_SOURCES = text(home_sql.sources(":reader"))
_FILL = text(home_sql.FILL)
_CREATE = text("INSERT INTO home_inbox (reader_id, floor_id, built_at) VALUES (:reader, :floor, :now)")


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def drop(session: AsyncSession, reader: uuid.UUID) -> None:
    """Call in the transaction that changes ``reader``'s followees or groups, before it does."""
    if _postgres(session):
        await session.execute(_SHARED)
        await session.execute(_DROP, {"reader": reader})


async def fan_out(session: AsyncSession, post: Post) -> None:
    """Call in the transaction that restores ``post`` (an inbox that holds it already is left
    as it is). A new post fans out with its event instead (``fanning_out``)."""
    if _postgres(session):
        then = _fan_out(post)
        await session.execute(_SHARED)
        await session.execute(_FAN_OUT[then.sql], then.params)


def fanning_out(session: AsyncSession, post: Post) -> Then | None:
    """The fan-out of a new ``post`` as the ``Then`` of its transaction's outbox write: one
    round trip for both (decision 0054). An earlier statement of the transaction selected from
    ``SHARED_LOCK``: the statement's snapshot is younger than the locks' wait. None on SQLite,
    which keeps no inboxes."""
    return _fan_out(post) if _postgres(session) else None


def _fan_out(post: Post) -> Then:
    if post.audience == BY_GROUP:
        return Then(home_sql.FAN_OUT_BY_GROUP, {"post": post.id, "group": post.group_id})
    return Then(home_sql.FAN_OUT_BY_AUTHOR, {"post": post.id, "author": post.author_id})


async def forget(session: AsyncSession, post_ids: Sequence[uuid.UUID]) -> None:
    """Call in the transaction that destroys ``post_ids`` (a batch of at most a thousand),
    after it has: a build running meanwhile, which may have read them, commits before the
    stripes' lock is granted here, and its entries of them go too; a build that starts later
    waits for this transaction and no longer finds them. No index leads to a post's entries:
    the statement reads them all, once for the whole batch (records' disposition is a
    background job, fan-out on write is not made to pay for it)."""
    if _postgres(session) and post_ids:
        await session.execute(_SHARED)
        await session.execute(delete(HomeEntry).where(col(HomeEntry.post_id).in_(post_ids)))


def stripe(reader: uuid.UUID) -> int:
    return reader.int % STRIPES


async def build(database: Database, reader: uuid.UUID, context: str, *, size: int, now: datetime) -> bool:
    """Builds ``reader``'s inbox unless a concurrent request just did. False when the build
    could not take its lock in time (the caller reads on demand instead)."""
    try:
        async with database.sessionmaker() as session, session.begin():
            await session.execute(_LOCK_TIMEOUT)
            await session.execute(_EXCLUSIVE, {"space": LOCK_SPACE, "stripe": stripe(reader)})
            if (await session.execute(_EXISTING, {"reader": reader})).first() is not None:
                return True
            await session.execute(_CLEAR, {"reader": reader})
            followees, groups = (await session.execute(_SOURCES, {"reader": reader})).one()
            params = {
                "reader": reader,
                "now": now,
                "context": context,
                "authors": [reader, *followees],
                "groups": list(groups),
                "size": size,
            }
            ids = (await session.execute(_FILL, params)).scalars().all()
            floor = min(ids) if len(ids) >= size else None
            await session.execute(_CREATE, {"reader": reader, "floor": floor, "now": now})
    except DBAPIError as exc:
        if sqlstate(exc) != LOCK_NOT_AVAILABLE:
            raise
        log.warning("home inbox build timed out waiting for its lock", extra={"stripe": stripe(reader)})
        return False
    return True


def retention(keep: timedelta) -> list[Retention]:
    """Inboxes built more than ``keep`` ago, then entries whose inbox is gone (in this order:
    entries never go before their inbox)."""
    inbox, entry = HomeInbox.__table__, HomeEntry.__table__  # type: ignore[attr-defined]
    live = exists().where(and_(inbox.c.reader_id == entry.c.reader_id, inbox.c.built_at == entry.c.built_at))
    return [
        Retention("home inboxes", inbox, "built_at", keep),
        Retention("home inbox entries", entry, "built_at", keep, condition=~live),
    ]
