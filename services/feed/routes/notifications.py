"""Notifications of the token's persona, and the event stream of its home timeline."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import or_, update
from sqlmodel import col, select

from kit.db import Database, SessionDep
from kit.errors import BadRequest
from kit.ids import new_id
from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from kit.timeutil import utcnow
from kit.tokens import CurrentPersona, Principal
from services.feed.models import Notification, PersonaReplica, Post
from services.feed.schemas import AuthorPublic, NotificationPublic, NotificationsRead, ReadResult
from services.feed.settings import FeedSettings
from services.feed.streams import SlotStream, stream_slots
from services.feed.timelines import (
    ACTIVE_AUTHOR,
    announcements_condition,
    home_condition,
    post_public,
    posts_for,
)

router = APIRouter(prefix="/api/v1", tags=["notifications"])

STREAM_BATCH = 50
_POSITION = re.compile(r"^([0-9a-f]{32})\.([0-9a-f]{32})$")


def notifications_with_actors() -> Any:
    return (
        select(Notification, PersonaReplica.handle, PersonaReplica.display_name)
        .join(PersonaReplica, col(PersonaReplica.id) == col(Notification.actor_id), isouter=True)
        .where(ACTIVE_AUTHOR)
    )


def notification_public(
    note: Notification, handle: str | None, display_name: str | None
) -> NotificationPublic:
    return NotificationPublic(
        id=note.id,
        kind=note.kind,
        actor=AuthorPublic(id=note.actor_id, handle=handle, display_name=display_name),
        post_id=note.post_id,
        comment_id=note.comment_id,
        created_at=note.created_at,
        read=note.read_at is not None,
    )


@router.get("/notifications", summary="The caller's notifications, newest first")
async def list_notifications(
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    unread: Annotated[bool, Query(description="Only those not yet read.")] = False,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[NotificationPublic]:
    """Mentions, comments on the caller's posts and replies to the caller's comments, for the
    persona of the token only."""
    scope = f"notifications:{caller.persona_id}:{int(unread)}"
    before = decode_id_cursor(scope, cursor)
    query = notifications_with_actors().where(col(Notification.persona_id) == caller.persona_id)
    if unread:
        query = query.where(col(Notification.read_at).is_(None))
    if before is not None:
        query = query.where(col(Notification.id) < before)
    rows = (await session.execute(query.order_by(col(Notification.id).desc()).limit(limit + 1))).all()
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda r: [str(r[0].id)])
    return Page[NotificationPublic](
        items=[notification_public(*r) for r in page.items], next_cursor=page.next_cursor
    )


@router.post("/notifications/read", summary="Mark notifications read")
async def mark_notifications_read(
    body: NotificationsRead, session: SessionDep, caller: CurrentPersona
) -> ReadResult:
    """Either the given ids (up to 100; ids of other personas are ignored) or all of them."""
    statement = update(Notification).where(
        col(Notification.persona_id) == caller.persona_id, col(Notification.read_at).is_(None)
    )
    if body.ids is not None:
        statement = statement.where(col(Notification.id).in_(body.ids))
    elif not body.all:
        return ReadResult(marked=0)  # all: false and no ids
    result = await session.execute(statement.values(read_at=utcnow()))
    await session.commit()
    return ReadResult(marked=int(getattr(result, "rowcount", 0) or 0))


def _parse_position(value: str | None) -> tuple[uuid.UUID, uuid.UUID]:
    """An event id is ``<last post id>.<last notification id>`` in hex."""
    if value is None:
        now = new_id()
        return now, now
    match = _POSITION.match(value.strip().lower())
    if match is None:
        raise BadRequest("Last-Event-ID is not an id this stream gave.", slug="bad-event-id")
    return uuid.UUID(match.group(1)), uuid.UUID(match.group(2))


def _event(kind: str, position: tuple[uuid.UUID, uuid.UUID], data: str) -> str:
    return f"id: {position[0].hex}.{position[1].hex}\nevent: {kind}\ndata: {data}\n\n"


async def _news(
    database: Database, caller: Principal, position: tuple[uuid.UUID, uuid.UUID]
) -> tuple[list[Any], list[Any]]:
    async with database.sessionmaker() as session:
        now = utcnow()
        posts = (
            await session.execute(
                posts_for(caller)
                .where(
                    or_(home_condition(caller, now), announcements_condition(caller, now)),
                    col(Post.id) > position[0],
                )
                .order_by(col(Post.id))
                .limit(STREAM_BATCH)
            )
        ).all()
        notes = (
            await session.execute(
                notifications_with_actors()
                .where(col(Notification.persona_id) == caller.persona_id, col(Notification.id) > position[1])
                .order_by(col(Notification.id))
                .limit(STREAM_BATCH)
            )
        ).all()
    return list(posts), list(notes)


@router.get(
    "/stream",
    summary="Server-sent events: new home-timeline posts and notifications",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Events `post` (a PostPublic) and `notification` (a NotificationPublic); "
            "each event's id resumes the stream after it as `Last-Event-ID`.",
        },
        429: {"description": "The persona already holds the most open streams; see Retry-After"},
    },
)
async def stream_events(
    request: Request,
    caller: CurrentPersona,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=100)] = None,
) -> StreamingResponse:
    """Without `Last-Event-ID` the stream starts now; with it, it first sends what the caller
    missed. The stream ends after a while or when the token expires; reconnect to go on."""
    position = _parse_position(last_event_id)
    settings: FeedSettings = request.app.state.settings
    database: Database = request.app.state.database
    ends_at = min(
        time.monotonic() + settings.stream_max_seconds, time.monotonic() + caller.expires_at - time.time()
    )
    assert caller.persona_id is not None
    release = stream_slots(request.app, settings.stream_max_per_persona).take(caller.persona_id, ends_at)

    async def events() -> AsyncIterator[str]:
        nonlocal position
        yield f"retry: {int(settings.stream_poll_seconds * 1000)}\n\n"
        quiet_since = time.monotonic()
        while True:
            posts, notes = await _news(database, caller, position)
            now = utcnow()
            for row in posts:
                position = (row[0].id, position[1])
                yield _event("post", position, post_public(row, now).model_dump_json())
            for row in notes:
                position = (position[0], row[0].id)
                yield _event("notification", position, notification_public(*row).model_dump_json())
            if posts or notes:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settings.stream_heartbeat_seconds:
                quiet_since = time.monotonic()
                yield ": keep-alive\n\n"
            if time.monotonic() >= ends_at or await request.is_disconnected():
                return
            if len(posts) == STREAM_BATCH or len(notes) == STREAM_BATCH:
                continue  # catching up after a long absence
            await anyio.sleep(min(settings.stream_poll_seconds, max(0.0, ends_at - time.monotonic())))

    return SlotStream(
        events(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}, release=release
    )
