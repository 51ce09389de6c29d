"""Groups' request dependencies: everything a route takes from the request or the app's state
(settings, the database session, the outbox, the caller, the group the path names, the calls
to media) comes from here, so routes never read ``request.app.state`` themselves."""

from __future__ import annotations

import uuid
from typing import Annotated

import httpx
from fastapi import Depends, Path, Request

from domain.media import Media
from domain.principal import CurrentPersona
from kit.db import SessionDep
from kit.idempotency import IdempotencyKeyHeader
from kit.internal import ServiceToken
from kit.outbox import OutboxDep
from services.groups.access import Access, visible_group
from services.groups.settings import GroupsSettings

__all__ = [
    "CurrentPersona",
    "GroupAccess",
    "IdempotencyKeyHeader",
    "MediaDep",
    "OutboxDep",
    "ServiceToken",
    "SessionDep",
    "SettingsDep",
]


async def _settings(request: Request) -> GroupsSettings:
    settings: GroupsSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[GroupsSettings, Depends(_settings)]


async def _media(request: Request) -> Media:
    """The calls to media (decision 0036), through the app's HTTP client."""
    settings: GroupsSettings = request.app.state.settings
    client: httpx.AsyncClient = request.app.state.http_client
    return Media(
        client,
        settings.media_url,
        settings.internal_token.get_secret_value(),
        settings.media_timeout_seconds,
    )


MediaDep = Annotated[Media, Depends(_media)]


async def _group_access(
    group_id: Annotated[uuid.UUID, Path(description="The group's id.")],
    session: SessionDep,
    caller: CurrentPersona,
) -> Access:
    """The group the path names, as the caller may see it (access.visible_group)."""
    return await visible_group(session, group_id, caller)


GroupAccess = Annotated[Access, Depends(_group_access)]
