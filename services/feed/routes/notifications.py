"""Notifications of the token's persona, and the event stream of its home timeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from kit.pagination import Cursor, Limit, Page
from services.feed import notifications, streams
from services.feed.deps import CurrentPersona, DatabaseDep, SessionDep, SettingsDep, StreamSlotsDep
from services.feed.listing import page_of
from services.feed.schemas import NotificationPublic, NotificationsRead, ReadResult, notification_public
from services.feed.streams import SlotStream

router = APIRouter(prefix="/api/v1", tags=["notifications"])


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
    found = await notifications.received(session, caller, unread=unread, cursor=cursor, limit=limit)
    return page_of(request, response, found, limit=limit, item=lambda row: notification_public(*row))


@router.post("/notifications/read", summary="Mark notifications read")
async def mark_notifications_read(
    body: NotificationsRead, session: SessionDep, caller: CurrentPersona
) -> ReadResult:
    """Either the given ids (up to 100; ids of other personas are ignored) or all of them."""
    assert caller.persona_id is not None
    return ReadResult(marked=await notifications.mark_read(session, caller.persona_id, body))


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
    settings: SettingsDep,
    database: DatabaseDep,
    slots: StreamSlotsDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=100)] = None,
) -> StreamingResponse:
    """Without `Last-Event-ID` the stream starts now; with it, it first sends what the caller
    missed. The stream ends after a while or when the token expires; reconnect to go on."""
    at = streams.position(last_event_id)
    until = streams.ends_at(settings, caller)
    assert caller.persona_id is not None
    release = slots.take(caller.persona_id, until)
    content = streams.events(
        database, caller, at, settings, until=until, disconnected=request.is_disconnected
    )
    return SlotStream(
        content, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}, release=release
    )
