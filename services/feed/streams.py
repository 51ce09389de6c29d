"""The event stream of a persona's home timeline and notifications: what it sends (the posts
the home rule brings, ``timelines.home_condition`` and ``announcements_condition``, and the
reader's notifications, ``notifications.notifications_of``), where it resumes (an event's id),
and how many streams each persona holds open in this process, so that one token cannot tie up
the process's connections and its database polling with streams."""

from __future__ import annotations

import math
import re
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from sqlalchemy import or_
from sqlmodel import col
from starlette.types import Receive, Scope, Send

from domain.principal import Principal
from kit.db import Database
from kit.errors import BadRequest, TooManyRequests
from kit.ids import new_id
from kit.timeutil import utcnow
from services.feed.models import Notification, Post
from services.feed.notifications import notifications_of
from services.feed.schemas import notification_public, post_public
from services.feed.settings import FeedSettings
from services.feed.timelines import announcements_condition, home_condition, posts_for

STREAM_BATCH = 50
_POSITION = re.compile(r"^([0-9a-f]{32})\.([0-9a-f]{32})$")

# Where a stream stands: the last post and the last notification it sent.
Position = tuple[uuid.UUID, uuid.UUID]


def position(last_event_id: str | None) -> Position:
    """Where to resume: after ``last_event_id`` (``<last post id>.<last notification id>`` in
    hex), or now without one."""
    if last_event_id is None:
        now = new_id()
        return now, now
    match = _POSITION.match(last_event_id.strip().lower())
    if match is None:
        raise BadRequest("Last-Event-ID is not an id this stream gave.", slug="bad-event-id")
    return uuid.UUID(match.group(1)), uuid.UUID(match.group(2))


def ends_at(settings: FeedSettings, reader: Principal) -> float:
    """When a stream opened now ends (monotonic time): after ``stream_max_seconds``, or when
    the reader's token expires if that comes first."""
    return min(
        time.monotonic() + settings.stream_max_seconds, time.monotonic() + reader.expires_at - time.time()
    )


def _event(kind: str, at: Position, data: str) -> str:
    return f"id: {at[0].hex}.{at[1].hex}\nevent: {kind}\ndata: {data}\n\n"


async def news(database: Database, reader: Principal, at: Position) -> tuple[list[Any], list[Any]]:
    """Up to ``STREAM_BATCH`` posts and as many notifications after ``at``, oldest first."""
    assert reader.persona_id is not None
    async with database.sessionmaker() as session:
        now = utcnow()
        posts = (
            await session.execute(
                posts_for(reader)
                .where(
                    or_(home_condition(reader, now), announcements_condition(reader, now)),
                    col(Post.id) > at[0],
                )
                .order_by(col(Post.id))
                .limit(STREAM_BATCH)
            )
        ).all()
        notes = (
            await session.execute(
                notifications_of(reader.persona_id)
                .where(col(Notification.id) > at[1])
                .order_by(col(Notification.id))
                .limit(STREAM_BATCH)
            )
        ).all()
    return list(posts), list(notes)


async def events(
    database: Database,
    reader: Principal,
    at: Position,
    settings: FeedSettings,
    *,
    until: float,
    disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """The stream's text: a ``retry`` hint, then each post and notification after ``at`` as it
    comes (polling every ``stream_poll_seconds``), keep-alive comments in quiet spells, until
    ``until`` (monotonic time) or the client leaves."""
    yield f"retry: {int(settings.stream_poll_seconds * 1000)}\n\n"
    quiet_since = time.monotonic()
    while True:
        posts, notes = await news(database, reader, at)
        now = utcnow()
        for row in posts:
            at = (row[0].id, at[1])
            yield _event("post", at, post_public(row, now).model_dump_json())
        for row in notes:
            at = (at[0], row[0].id)
            yield _event("notification", at, notification_public(*row).model_dump_json())
        if posts or notes:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= settings.stream_heartbeat_seconds:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        if time.monotonic() >= until or await disconnected():
            return
        if len(posts) == STREAM_BATCH or len(notes) == STREAM_BATCH:
            continue  # catching up after a long absence
        await anyio.sleep(min(settings.stream_poll_seconds, max(0.0, until - time.monotonic())))


class StreamSlots:
    """Open streams per persona, each known by when it ends at the latest (monotonic time)."""

    def __init__(self, per_persona: int) -> None:
        self.per_persona = per_persona
        self.open: defaultdict[uuid.UUID, list[float]] = defaultdict(list)

    def take(self, persona_id: uuid.UUID, ends_at: float) -> Callable[[], None]:
        """Claims a slot until ``ends_at`` and returns what gives it back; when the persona holds
        them all, 429 with the wait until the first of its streams ends on its own."""
        held = self.open[persona_id]
        if len(held) >= self.per_persona:
            raise TooManyRequests(
                f"At most {self.per_persona} open event streams per persona; close one first.",
                retry_after=math.ceil(min(held) - time.monotonic()),
            )
        held.append(ends_at)
        return lambda: self._give_back(persona_id, ends_at)

    def _give_back(self, persona_id: uuid.UUID, ends_at: float) -> None:
        held = self.open.get(persona_id, [])
        if ends_at in held:
            held.remove(ends_at)
        if not held:
            self.open.pop(persona_id, None)


def stream_slots(app: FastAPI, per_persona: int) -> StreamSlots:
    slots: StreamSlots | None = getattr(app.state, "stream_slots", None)
    if slots is None:
        slots = app.state.stream_slots = StreamSlots(per_persona)
    return slots


class SlotStream(StreamingResponse):
    """An event stream that gives its slot back however it ends: finished, cut, or left."""

    def __init__(
        self, content: AsyncIterator[str], *, headers: Mapping[str, str], release: Callable[[], None]
    ) -> None:
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()
