"""The follow graph: personas follow personas of their own context."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from kit.db import SessionDep
from kit.errors import NotFound, Unprocessable
from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from kit.tokens import CurrentPersona
from services.feed import inbox
from services.feed.models import Follow, PersonaReplica
from services.feed.schemas import FollowPublic
from services.feed.settings import FeedSettings

router = APIRouter(prefix="/api/v1", tags=["following"])


@router.put(
    "/following/{persona_id}",
    summary="Follow a persona of the caller's context",
    responses={200: {"description": "Already followed"}, 201: {"description": "Followed"}},
)
async def follow_persona(
    persona_id: uuid.UUID, request: Request, session: SessionDep, caller: CurrentPersona, response: Response
) -> FollowPublic:
    """A persona of the other context answers 404, exactly as one that does not exist."""
    target = await session.get(PersonaReplica, persona_id)
    if target is None or target.context != caller.context or target.status != "active":
        raise NotFound("No persona with this id.")
    if persona_id == caller.persona_id:
        raise Unprocessable("A persona cannot follow itself.")
    assert caller.persona_id is not None
    follow = await session.get(Follow, (caller.persona_id, persona_id))
    response.status_code = 200
    if follow is None:
        settings: FeedSettings = request.app.state.settings
        following = await session.scalar(
            select(func.count()).select_from(Follow).where(col(Follow.follower_id) == caller.persona_id)
        )
        if (following or 0) >= settings.max_following:
            raise Unprocessable(f"A persona follows at most {settings.max_following} personas.")
        follow = Follow(follower_id=caller.persona_id, followee_id=persona_id)
        await inbox.drop(session, caller.persona_id)
        session.add(follow)
        try:
            await session.commit()
            response.status_code = 201
        except IntegrityError:
            await session.rollback()
            follow = await session.get(Follow, (caller.persona_id, persona_id))
            assert follow is not None
    return FollowPublic(
        persona_id=persona_id, handle=target.handle, display_name=target.display_name, since=follow.created_at
    )


@router.delete("/following/{persona_id}", status_code=204, summary="Stop following a persona")
async def unfollow_persona(persona_id: uuid.UUID, session: SessionDep, caller: CurrentPersona) -> None:
    """Idempotent: unfollowing someone not followed is not an error."""
    follow = await session.get(Follow, (caller.persona_id, persona_id))
    if follow is not None:
        await inbox.drop(session, follow.follower_id)
        await session.delete(follow)
        await session.commit()


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
    scope = f"{'followers' if followers else 'following'}:{caller.persona_id}"
    after = decode_id_cursor(scope, cursor)
    mine, other = (
        (col(Follow.followee_id), col(Follow.follower_id))
        if followers
        else (col(Follow.follower_id), col(Follow.followee_id))
    )
    query = (
        select(Follow, PersonaReplica.handle, PersonaReplica.display_name)
        .join(PersonaReplica, col(PersonaReplica.id) == other)
        .where(mine == caller.persona_id, col(PersonaReplica.status) == "active")
    )
    if after:
        query = query.where(other > after)
    rows = (await session.execute(query.order_by(other).limit(limit + 1))).all()
    page = paginate(
        request,
        response,
        rows,
        limit=limit,
        scope=scope,
        key=lambda r: [str(r[0].follower_id if followers else r[0].followee_id)],
    )
    return Page[FollowPublic](
        items=[
            FollowPublic(
                persona_id=f.follower_id if followers else f.followee_id,
                handle=h,
                display_name=d,
                since=f.created_at,
            )
            for f, h, d in page.items
        ],
        next_cursor=page.next_cursor,
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
