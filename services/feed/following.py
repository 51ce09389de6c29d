"""The follow graph: a persona follows active personas of its own context, up to a limit, and
stops following (each change rebuilds the follower's home inbox and commits); and the lists of
whom a persona follows and who follows it, active personas only."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from domain.principal import Principal
from kit.errors import NotFound, Unprocessable
from kit.pagination import decode_id_cursor
from services.feed import inbox
from services.feed.listing import Listing
from services.feed.models import Follow, PersonaReplica
from services.feed.schemas import FollowPublic, follow_public


async def follow(
    session: AsyncSession, caller: Principal, persona_id: uuid.UUID, *, max_following: int
) -> tuple[FollowPublic, bool]:
    """The follow, and whether this call made it (False when it was there already, or a
    concurrent request made it). A persona of the other context is a 404, exactly as one that
    does not exist."""
    target = await session.get(PersonaReplica, persona_id)
    if target is None or target.context != caller.context or target.status != "active":
        raise NotFound("No persona with this id.")
    if persona_id == caller.persona_id:
        raise Unprocessable("A persona cannot follow itself.")
    assert caller.persona_id is not None
    made = False
    found = await session.get(Follow, (caller.persona_id, persona_id))
    if found is None:
        following = await session.scalar(
            select(func.count()).select_from(Follow).where(col(Follow.follower_id) == caller.persona_id)
        )
        if (following or 0) >= max_following:
            raise Unprocessable(
                "A persona follows at most {limit} personas.", params={"limit": max_following}
            )
        found = Follow(follower_id=caller.persona_id, followee_id=persona_id)
        await inbox.drop(session, caller.persona_id)
        session.add(found)
        try:
            await session.commit()
            made = True
        except IntegrityError:
            await session.rollback()
            found = await session.get(Follow, (caller.persona_id, persona_id))
            assert found is not None
    return follow_public(found, target.handle, target.display_name, follower=False), made


async def unfollow(session: AsyncSession, caller: Principal, persona_id: uuid.UUID) -> None:
    """Unfollowing someone not followed changes nothing."""
    found = await session.get(Follow, (caller.persona_id, persona_id))
    if found is not None:
        await inbox.drop(session, found.follower_id)
        await session.delete(found)
        await session.commit()


async def follows(
    session: AsyncSession, reader: Principal, *, followers: bool, cursor: str | None, limit: int
) -> Listing[Any]:
    """The active personas ``reader`` follows, or with ``followers`` those that follow it, in
    id order; rows for ``schemas.follow_public``."""
    scope = f"{'followers' if followers else 'following'}:{reader.persona_id}"
    after = decode_id_cursor(scope, cursor)
    mine, other = (
        (col(Follow.followee_id), col(Follow.follower_id))
        if followers
        else (col(Follow.follower_id), col(Follow.followee_id))
    )
    query = (
        select(Follow, PersonaReplica.handle, PersonaReplica.display_name)
        .join(PersonaReplica, col(PersonaReplica.id) == other)
        .where(mine == reader.persona_id, col(PersonaReplica.status) == "active")
    )
    if after:
        query = query.where(other > after)
    rows = (await session.execute(query.order_by(other).limit(limit + 1))).all()
    return Listing(scope, rows, lambda row: [str(row[0].follower_id if followers else row[0].followee_id)])
