"""The follow graph: personas follow personas of their own context."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from kit.pagination import Cursor, Limit, Page
from services.feed import following
from services.feed.deps import CurrentPersona, SessionDep, SettingsDep
from services.feed.listing import page_of
from services.feed.schemas import FollowPublic, follow_public

router = APIRouter(prefix="/api/v1", tags=["following"])


@router.put(
    "/following/{persona_id}",
    summary="Follow a persona of the caller's context",
    responses={
        200: {"description": "Already followed"},
        201: {"description": "Followed", "model": FollowPublic},
    },
)
async def follow_persona(
    persona_id: uuid.UUID,
    session: SessionDep,
    caller: CurrentPersona,
    settings: SettingsDep,
    response: Response,
) -> FollowPublic:
    """A persona of the other context answers 404, exactly as one that does not exist."""
    answer, made = await following.follow(session, caller, persona_id, max_following=settings.max_following)
    response.status_code = 201 if made else 200
    return answer


@router.delete("/following/{persona_id}", status_code=204, summary="Stop following a persona")
async def unfollow_persona(persona_id: uuid.UUID, session: SessionDep, caller: CurrentPersona) -> None:
    """Idempotent: unfollowing someone not followed is not an error."""
    await following.unfollow(session, caller, persona_id)


async def _list(
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    limit: int,
    cursor: str | None,
    *,
    followers: bool,
) -> Page[FollowPublic]:
    found = await following.follows(session, caller, followers=followers, cursor=cursor, limit=limit)
    return page_of(
        request, response, found, limit=limit, item=lambda row: follow_public(*row, follower=followers)
    )


@router.get("/following", summary="Personas the caller follows")
async def list_following(
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[FollowPublic]:
    return await _list(request, response, session, caller, limit, cursor, followers=False)


@router.get("/followers", summary="Personas that follow the caller")
async def list_followers(
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[FollowPublic]:
    return await _list(request, response, session, caller, limit, cursor, followers=True)
