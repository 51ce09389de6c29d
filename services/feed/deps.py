"""Feed's request dependencies, all in one place: the database session, the caller's persona,
the outbox, the settings, the database itself (for work that opens sessions of its own, such as
an event stream), the per-process count of open event streams, the stream's reader (a
bearer token's persona, or a ticket's) and a create's attachments at media (through the app's
HTTP client). Routes take what they need from here and never read the application's state
themselves."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Query, Request

from domain.principal import (
    CurrentPersona,
    Principal,
    admit,
    current_persona,
    current_principal,
    oauth2_scheme,
)
from kit.db import DatabaseDep, SessionDep
from kit.errors import BadRequest
from kit.outbox import OutboxDep
from services.feed.attachments import Attaching, MediaCalls
from services.feed.replicas import Groups
from services.feed.settings import FeedSettings
from services.feed.streams import MAX_TICKET_LENGTH, StreamSlots, redeem_ticket, stream_slots

__all__ = [
    "AttachingDep",
    "CurrentPersona",
    "DatabaseDep",
    "GroupsDep",
    "OutboxDep",
    "SessionDep",
    "SettingsDep",
    "StreamReader",
    "StreamSlotsDep",
]


def settings_of(request: Request) -> FeedSettings:
    """The settings, also for the lean home route, which takes no dependencies (decision 0013)."""
    settings: FeedSettings = request.app.state.settings
    return settings


async def _settings(request: Request) -> FeedSettings:
    return settings_of(request)


SettingsDep = Annotated[FeedSettings, Depends(_settings)]


async def _attaching(request: Request, settings: SettingsDep) -> Attaching:
    """A create's attachments: the calls to media through the app's HTTP client (in the test
    suite, the one that reaches every app in process)."""
    client: httpx.AsyncClient = request.app.state.http_client
    return Attaching(MediaCalls(client, settings))


AttachingDep = Annotated[Attaching, Depends(_attaching)]


async def _groups(request: Request, settings: SettingsDep) -> Groups:
    """Feed's question to groups when its replicas miss a group or a membership
    (``replicas``), through the app's HTTP client."""
    client: httpx.AsyncClient = request.app.state.http_client
    return Groups(client, settings)


GroupsDep = Annotated[Groups, Depends(_groups)]


async def _stream_slots(request: Request, settings: SettingsDep) -> StreamSlots:
    return stream_slots(request.app, settings.stream_max_per_persona)


StreamSlotsDep = Annotated[StreamSlots, Depends(_stream_slots)]


async def _stream_reader(
    request: Request,
    database: DatabaseDep,
    ticket: Annotated[
        str | None,
        Query(
            max_length=MAX_TICKET_LENGTH,
            description="A one-time ticket from `POST /api/v1/stream/tickets`, instead of a bearer "
            "token, for a browser's `EventSource`, which cannot send an Authorization header.",
        ),
    ] = None,
    _documented: Annotated[str | None, Depends(oauth2_scheme)] = None,
) -> Principal:
    """Who reads the stream: the bearer token's persona, or, with no Authorization header, the
    persona a ticket stands for, redeemed once. Either way the reader is held to its app's
    scopes and against the replica (``PersonaCheck``), as ``current_principal`` holds a token:
    a ticket of a persona suspended since it was issued opens nothing. Both at once is a 400,
    as no browser sends that."""
    if ticket is None:
        return await current_persona(await current_principal(request))
    if "authorization" in request.headers:
        raise BadRequest("Send a bearer token or a stream ticket, not both.", slug="ticket-and-token")
    return await admit(request, await redeem_ticket(database, ticket))


StreamReader = Annotated[Principal, Depends(_stream_reader)]
