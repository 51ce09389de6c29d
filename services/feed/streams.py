"""The event stream of a persona's home timeline and notifications: what it sends (the posts
the home rule brings, ``timelines.home_condition`` and ``announcements_condition``, and the
reader's notifications, ``notifications.notifications_of``), where it resumes (an event's id),
when and why it ends (a ``reconnect`` event that says so), how many streams each persona holds
open in this process, so that one token cannot tie up the process's connections and its
database polling with streams, and the one-time tickets that open it from a browser, whose
``EventSource`` cannot send an Authorization header (decision 0035, docs/stream.md). The events
it sends are listed, with their schemas, in ``domain.catalogue.STREAM_EVENTS`` (docs/events.md)."""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from starlette.types import Receive, Scope, Send

from domain.contexts import CONTEXTS, Context
from domain.principal import Principal
from kit.db import Database
from kit.errors import BadRequest, TooManyRequests, Unauthorized
from kit.housekeeping import Retention
from kit.ids import new_id
from kit.timeutil import utcnow
from services.feed.models import Notification, Post, StoredTicket
from services.feed.notifications import notifications_of
from services.feed.schemas import (
    ReconnectReason,
    StreamReconnect,
    StreamTicket,
    notification_public,
    post_public,
)
from services.feed.settings import FeedSettings
from services.feed.timelines import announcements_condition, home_condition, posts_for

STREAM_BATCH = 50
TICKET_PREFIX = "gst_"  # recognisable in a leak, and by secret scanners
MAX_TICKET_LENGTH = 100
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


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """When a stream ends (monotonic time), and why: the ``reason`` its ``reconnect`` event gives."""

    at: float
    reason: ReconnectReason


def end_of(settings: FeedSettings, reader: Principal) -> StreamEnd:
    """When a stream opened now ends: when the reader's token expires, or after
    ``stream_max_seconds`` if that comes first."""
    now = time.monotonic()
    token_expires = now + reader.expires_at - time.time()
    timeout = now + settings.stream_max_seconds
    if token_expires <= timeout:
        return StreamEnd(token_expires, "token-expired")
    return StreamEnd(timeout, "timeout")


def _event(kind: str, at: Position, data: str) -> str:
    return f"id: {at[0].hex}.{at[1].hex}\nevent: {kind}\ndata: {data}\n\n"


def _reconnect(reason: ReconnectReason) -> str:
    """The last event: no ``id`` line, so that the client's resume position (the last event id
    it saw) stays where the posts and notifications left it."""
    return f"event: reconnect\ndata: {StreamReconnect(reason=reason).model_dump_json()}\n\n"


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
    end: StreamEnd,
    disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """The stream's text: a ``retry`` hint, then each post and notification after ``at`` as it
    comes (polling every ``stream_poll_seconds``), keep-alive comments in quiet spells, until
    the client leaves or ``end``, which a ``reconnect`` event announces. What a last poll at
    the end finds is sent first, so the client resumes from the newest id it has."""
    until = end.at
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
        if time.monotonic() >= until:
            yield _reconnect(end.reason)
            return
        if await disconnected():
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
                "At most {limit} open event streams per persona; close one first.",
                params={"limit": self.per_persona},
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

    media_type = "text/event-stream"

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


def ticket_digest(ticket: str) -> str:
    """What is stored of a ticket: its SHA-256, so a copy of the database opens no stream."""
    return hashlib.sha256(ticket.encode()).hexdigest()


async def issue_ticket(session: AsyncSession, reader: Principal, settings: FeedSettings) -> StreamTicket:
    """A random ticket that stands for ``reader`` once, for ``stream_ticket_seconds`` and never
    past the expiry of the reader's token; 401 for a token that expires within a second."""
    assert reader.persona_id is not None and reader.context is not None
    now = utcnow()
    token_expires_at = datetime.fromtimestamp(reader.expires_at, UTC)
    expires_at = min(now + timedelta(seconds=settings.stream_ticket_seconds), token_expires_at)
    lifetime = (expires_at - now).total_seconds()
    if lifetime < 1:
        raise Unauthorized("The bearer token has expired; refresh it, then ask for a ticket.")
    ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
    session.add(
        StoredTicket(
            digest=ticket_digest(ticket),
            persona_id=reader.persona_id,
            context=reader.context,
            app_id=reader.app_id,
            scope=" ".join(sorted(reader.scopes)),
            roles=sorted(reader.roles),
            token_expires_at=token_expires_at,
            expires_at=expires_at,
        )
    )
    await session.commit()
    return StreamTicket(ticket=ticket, expires_in=int(lifetime))


async def redeem_ticket(database: Database, ticket: str) -> Principal:
    """The reader a ticket stands for, rebuilt as its token made it, once: the ticket is
    marked used by a conditional update, so of two requests with it only one gets through.
    401 for a ticket unknown, used or expired, alike. The caller still holds the reader against
    the persona replica, as for a bearer token."""
    now = utcnow()
    async with database.sessionmaker() as session, session.begin():
        row = (
            await session.execute(
                update(StoredTicket)
                .where(
                    col(StoredTicket.digest) == ticket_digest(ticket),
                    col(StoredTicket.used_at).is_(None),
                    col(StoredTicket.expires_at) > now,
                )
                .values(used_at=now)
                .returning(
                    col(StoredTicket.persona_id),
                    col(StoredTicket.context),
                    col(StoredTicket.app_id),
                    col(StoredTicket.scope),
                    col(StoredTicket.roles),
                    col(StoredTicket.token_expires_at),
                )
            )
        ).first()
    if row is None or row.context not in CONTEXTS:
        raise Unauthorized("The stream ticket is unknown, used or expired; ask for a new one.")
    context: Context = "personal" if row.context == "personal" else "professional"
    expires_at = row.token_expires_at.timestamp()
    return Principal(
        subject=str(row.persona_id),
        persona_id=row.persona_id,
        context=context,
        scopes=frozenset(row.scope.split()),
        roles=frozenset() if context == "personal" else frozenset(row.roles),
        token_id="",
        issued_at=now.timestamp(),
        expires_at=expires_at,
        app_id=row.app_id,
    )


def tickets_retention() -> Retention:
    """Tickets go once they can no longer be used: a deleted ticket and an expired one are
    refused alike."""
    return Retention("stream tickets", StoredTicket.__table__, "expires_at", timedelta(0))  # type: ignore[attr-defined]
