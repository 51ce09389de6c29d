"""What feed does with other services' events: keep its replicas of personas, groups and
memberships, which decide who sees what without calling another service on a read."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kit.db import upsert
from kit.outbox import EventHandler, EventIn
from kit.timeutil import utcnow
from services.feed.models import Follow, GroupReplica, MembershipReplica, PersonaReplica, Post


async def on_persona_changed(session: AsyncSession, event: EventIn) -> None:
    data = event.data
    persona_id = uuid.UUID(event.subject)
    updated_at = datetime.fromisoformat(data["updated_at"])
    current = await session.get(PersonaReplica, persona_id)
    if current is not None and current.updated_at >= updated_at:
        return  # an older event delivered late
    values = {
        "id": persona_id,
        "context": data["context"],
        "handle": data["handle"],
        "display_name": data["display_name"],
        "status": data["status"],
        "updated_at": updated_at,
    }
    await upsert(session, PersonaReplica, values, ["id"])


async def on_persona_erased(session: AsyncSession, event: EventIn) -> None:
    """Erasure removes the persona's content, follows and memberships."""
    persona_id = uuid.UUID(event.subject)
    now = utcnow()
    await session.execute(
        update(Post)
        .where(col(Post.author_id) == persona_id, col(Post.deleted_at).is_(None))
        .values(deleted_at=now, body="")
    )
    await session.execute(
        delete(Follow).where(
            (col(Follow.follower_id) == persona_id) | (col(Follow.followee_id) == persona_id)
        )
    )
    await session.execute(delete(MembershipReplica).where(col(MembershipReplica.persona_id) == persona_id))
    await session.execute(
        update(PersonaReplica).where(col(PersonaReplica.id) == persona_id).values(status="erased")
    )


async def on_group_changed(session: AsyncSession, event: EventIn) -> None:
    data = event.data
    group_id = uuid.UUID(event.subject)
    updated_at = datetime.fromisoformat(data["updated_at"])
    current = await session.get(GroupReplica, group_id)
    if current is not None and current.updated_at >= updated_at:
        return
    values = {
        "id": group_id,
        "context": data["context"],
        "visibility": data["visibility"],
        "archived": bool(data.get("archived", False)),
        "updated_at": updated_at,
    }
    await upsert(session, GroupReplica, values, ["id"])


async def on_membership_added(session: AsyncSession, event: EventIn) -> None:
    values = {
        "persona_id": uuid.UUID(event.data["persona_id"]),
        "group_id": uuid.UUID(event.data["group_id"]),
    }
    await upsert(session, MembershipReplica, values, ["persona_id", "group_id"], update=False)


async def on_membership_removed(session: AsyncSession, event: EventIn) -> None:
    await session.execute(
        delete(MembershipReplica).where(
            col(MembershipReplica.persona_id) == uuid.UUID(event.data["persona_id"]),
            col(MembershipReplica.group_id) == uuid.UUID(event.data["group_id"]),
        )
    )


handlers: dict[str, EventHandler] = {
    "persona.created": on_persona_changed,
    "persona.updated": on_persona_changed,
    "persona.erased": on_persona_erased,
    "group.created": on_group_changed,
    "group.updated": on_group_changed,
    "membership.added": on_membership_added,
    "membership.removed": on_membership_removed,
}
