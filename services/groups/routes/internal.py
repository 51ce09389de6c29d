"""Groups' internal routes, for the other services of the deployment and never published:
moderation's lookup of a reported group (decision 0032). Each takes the internal token."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from services.groups import moderation
from services.groups.deps import ServiceToken, SessionDep
from services.groups.schemas import GroupForModeration

router = APIRouter(prefix="/internal/moderation", include_in_schema=False, dependencies=[ServiceToken])


@router.get("/groups/{group_id:uuid}", summary="A reported group, as its reporter sees it")
async def reported_group(
    group_id: uuid.UUID,
    session: SessionDep,
    reader: Annotated[uuid.UUID, Query(description="The reporting persona's id.")],
) -> GroupForModeration:
    """404 for a group that is missing or that the reader may not see (groups' own rule), and
    for a reader that groups does not know as an active persona."""
    return await moderation.lookup(session, group_id, reader)
