"""Groups' internal routes, for the other services of the deployment and never published:
moderation's lookup of a reported group (decision 0032), media's question whether a reader
sees a group, and so its image (decision 0036), and feed's read of a group and one persona's
membership when its replicas have not caught up yet (``services.feed.replicas``). Each takes
the internal token."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from domain.contexts import Context
from services.groups import images, membership, moderation
from services.groups.deps import ServiceToken, SessionDep
from services.groups.schemas import GroupForModeration

router = APIRouter(prefix="/internal/moderation", include_in_schema=False, dependencies=[ServiceToken])
media_router = APIRouter(prefix="/internal/media", include_in_schema=False, dependencies=[ServiceToken])
feed_router = APIRouter(prefix="/internal/feed", include_in_schema=False, dependencies=[ServiceToken])


@router.get("/groups/{group_id:uuid}", summary="A reported group, as its reporter sees it")
async def reported_group(
    group_id: uuid.UUID,
    session: SessionDep,
    reader: Annotated[uuid.UUID, Query(description="The reporting persona's id.")],
) -> GroupForModeration:
    """404 for a group that is missing or that the reader may not see (groups' own rule), and
    for a reader that groups does not know as an active persona."""
    return await moderation.lookup(session, group_id, reader)


@media_router.get(
    "/groups/{group_id:uuid}", status_code=204, summary="Whether a reader sees a group (and its image)"
)
async def group_seen(
    group_id: uuid.UUID,
    session: SessionDep,
    reader: Annotated[uuid.UUID, Query(description="The reading persona's id.")],
) -> Response:
    """204 when the reader sees the group by groups' own rule; 404 for a group that is missing
    or that the reader may not see, and for a reader groups does not know as an active persona."""
    await images.seen_by(session, group_id, reader)
    return Response(status_code=204)


@feed_router.get(
    "/groups/{group_id:uuid}", summary="A group and a persona's membership, as feed replicates them"
)
async def group_replicated(
    group_id: uuid.UUID,
    session: SessionDep,
    persona: Annotated[uuid.UUID, Query(description="The persona whose membership feed needs.")],
    context: Annotated[Context, Query(description="That persona's context.")],
) -> dict[str, object]:
    """The data of the group's and the membership's latest events (``membership`` null when the
    persona is no member); 404 for a group that is missing or of another context."""
    return await membership.as_replicated(session, group_id, persona, context)
