"""Notifications of the token's persona, the event stream of its home timeline, and the
one-time tickets that open the stream from a browser."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from kit.pagination import Cursor, Limit, Page
from services.feed import notifications, streams
from services.feed.deps import (
    CurrentPersona,
    DatabaseDep,
    SessionDep,
    SettingsDep,
    StreamReader,
    StreamSlotsDep,
)
from services.feed.listing import page_of
from services.feed.schemas import (
    NotificationPublic,
    NotificationsRead,
    ReadResult,
    StreamEvent,
    StreamTicket,
    notification_public,
)
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


STREAM_DESCRIPTION = (
    "Server-sent events, one per new item; the `data:` line of each is JSON (docs/stream.md):\n\n"
    "- `post`: a PostPublic, a new post of the home timeline or an announcement;\n"
    "- `notification`: a NotificationPublic;\n"
    "- `reconnect`: a StreamReconnect, last before the stream ends, with the reason "
    "(`token-expired` or `timeout`); it has no id.\n\n"
    "The id of each `post` and `notification` event resumes the stream after it, as "
    "`Last-Event-ID` or `last_event_id`. A comment line (`: keep-alive`) keeps a quiet "
    "connection open. The schema here is that of one event, fields as named in the stream."
)
LAST_EVENT_ID = "Resume after this event id; a new `EventSource` cannot set `Last-Event-ID`."


@router.get(
    "/stream",
    summary="Server-sent events: new home-timeline posts and notifications",
    response_class=SlotStream,
    status_code=200,
    responses={
        200: {"model": StreamEvent, "description": STREAM_DESCRIPTION},
        429: {"description": "The persona already holds the most open streams; see Retry-After"},
    },
    # The body is text; the schema is that of one event, an object of its fields.
    openapi_extra={"responses": {"200": {"content": {"text/event-stream": {"schema": {"type": "object"}}}}}},
)
async def stream_events(
    request: Request,
    reader: StreamReader,
    settings: SettingsDep,
    database: DatabaseDep,
    slots: StreamSlotsDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=100)] = None,
    last_event_id_query: Annotated[
        str | None, Query(alias="last_event_id", max_length=100, description=LAST_EVENT_ID)
    ] = None,
) -> SlotStream:
    """Opened with a bearer token, or from a browser with a one-time `ticket` and no
    Authorization header. Without `Last-Event-ID` (or `last_event_id`; the header wins when
    both are given) the stream starts now; with it, it first sends what the caller missed. The
    stream ends after a while or when the token behind it expires, with a `reconnect` event
    that says which; reconnect (a browser with a new ticket) to go on, and miss nothing."""
    at = streams.position(last_event_id if last_event_id is not None else last_event_id_query)
    end = streams.end_of(settings, reader)
    assert reader.persona_id is not None
    release = slots.take(reader.persona_id, end.at)
    content = streams.events(database, reader, at, settings, end=end, disconnected=request.is_disconnected)
    return SlotStream(
        content, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}, release=release
    )


@router.post(
    "/stream/tickets",
    status_code=201,
    summary="A one-time ticket that opens the event stream from a browser",
)
async def create_stream_ticket(
    response: Response, session: SessionDep, caller: CurrentPersona, settings: SettingsDep
) -> StreamTicket:
    """A browser's `EventSource` cannot send an Authorization header: it opens
    `GET /api/v1/stream?ticket=…` with this instead. The ticket is random, opens one stream
    once, within `expires_in` seconds (30, never past the token's own expiry), as the token's
    persona; the stream still ends when the token expires."""
    response.headers["Cache-Control"] = "no-store"
    return await streams.issue_ticket(session, caller, settings)
