"""Membership changes and the events that tell other services about them. Every change of a
group's members goes through here, so the member count, the owner rule and the events stay
consistent whichever route or event caused it: joining an open group, role changes, leaving and
removals (the flows the routes call), and the steps they and the join-request and invitation
flows share."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, String, cast, delete, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kit.errors import Conflict, Forbidden, NotFound
from kit.ids import new_id
from kit.outbox import Outbox
from kit.timeutil import utcnow
from services.groups import records
from services.groups.access import Access, check_join_budget, group_not_found, lock_group, membership_of
from services.groups.models import Group, Invitation, JoinRequest, Membership, PersonaReplica

ROLE_RANK = {"owner": 0, "moderator": 1, "member": 2}
NOT_MEMBER = "The persona is not a member of this group."
LAST_OWNER = "The last owner cannot leave or step down: hand over ownership first."


def group_event(group: Group) -> dict[str, object]:
    """The data of every ``group.*`` event but ``group.deleted``; ``moderation`` is null, or
    'hidden' or 'removed' while moderation keeps the group from its members."""
    return {
        "id": str(group.id),
        "context": group.context,
        "handle": group.handle,
        "name": group.name,
        "visibility": group.visibility,
        "archived": group.archived_at is not None,
        "moderation": group.moderation,
        "updated_at": group.updated_at.isoformat(),
    }


def membership_event(group: Group, membership: Membership) -> dict[str, object]:
    return {
        "group_id": str(group.id),
        "persona_id": str(membership.persona_id),
        "context": group.context,
        "role": membership.role,
        "joined_at": membership.joined_at.isoformat(),
        "updated_at": membership.updated_at.isoformat(),
    }


async def as_replicated(
    session: AsyncSession, group_id: uuid.UUID, persona_id: uuid.UUID, context: str
) -> dict[str, object]:
    """Feed's question when its replicas have not caught up yet (read-your-writes): the group
    and the persona's membership of it (null when none), as their latest events describe them.
    A group that does not exist, or of another context than the persona's ``context``, is the
    404 of a missing group: the question never pairs a persona with a group of its other
    context."""
    group = await session.get(Group, group_id)
    if group is None or group.context != context:
        raise group_not_found()
    member = await membership_of(session, group_id, persona_id)
    return {"group": group_event(group), "membership": membership_event(group, member) if member else None}


async def add(
    session: AsyncSession, outbox: Outbox, group: Group, persona_id: uuid.UUID, role: str = "member"
) -> tuple[Membership, bool]:
    """Adds the persona unless it is a member already; returns the membership and whether it
    is new. ``INSERT … ON CONFLICT DO NOTHING`` makes concurrent joins of one persona end
    with one row and no error, on PostgreSQL and SQLite alike."""
    now = utcnow()
    dialect: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {
        "id": new_id(),
        "group_id": group.id,
        "persona_id": persona_id,
        "role": role,
        "joined_at": now,
        "updated_at": now,
    }
    table: Any = Membership.__table__  # type: ignore[attr-defined]
    statement = (
        dialect.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["group_id", "persona_id"])
        .returning(table.c.id)
    )
    inserted = (await session.execute(statement)).scalar_one_or_none()
    membership = await session.scalar(
        select(Membership)
        .where(col(Membership.group_id) == group.id, col(Membership.persona_id) == persona_id)
        .execution_options(populate_existing=True)
    )
    assert membership is not None
    if inserted is None:
        return membership, False
    await session.execute(
        update(Group).where(col(Group.id) == group.id).values(member_count=col(Group.member_count) + 1)
    )
    await outbox.publish(session, "membership.added", str(group.id), membership_event(group, membership))
    return membership, True


async def owner_count(session: AsyncSession, group_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(col(Membership.group_id) == group_id, col(Membership.role) == "owner")
    )
    return int(count or 0)


async def set_role(
    session: AsyncSession, outbox: Outbox, group: Group, membership: Membership, role: str
) -> None:
    if membership.role == role:
        return
    membership.role = role
    membership.updated_at = utcnow()
    session.add(membership)
    await session.flush()
    await outbox.publish(session, "membership.updated", str(group.id), membership_event(group, membership))


async def remove(session: AsyncSession, outbox: Outbox, group: Group, membership: Membership) -> None:
    membership.updated_at = utcnow()
    await session.execute(delete(Membership).where(col(Membership.id) == membership.id))
    await session.execute(
        update(Group).where(col(Group.id) == group.id).values(member_count=col(Group.member_count) - 1)
    )
    await outbox.publish(session, "membership.removed", str(group.id), membership_event(group, membership))


async def successor(session: AsyncSession, group_id: uuid.UUID, leaving: uuid.UUID) -> Membership | None:
    """The longest-standing moderator, else the longest-standing member."""
    rows = await session.scalars(
        select(Membership)
        .where(
            col(Membership.group_id) == group_id,
            col(Membership.persona_id) != leaving,
            col(Membership.role).in_(["moderator", "member"]),
        )
        .order_by(col(Membership.role) != "moderator", col(Membership.joined_at), col(Membership.id))
        .limit(1)
    )
    return rows.first()


async def drop_persona(session: AsyncSession, outbox: Outbox, persona_id: uuid.UUID) -> None:
    """A deactivated or erased persona leaves every group. Where it was the last owner, the
    longest-standing moderator (else member) becomes owner first; a group left with nobody
    is archived. Its join requests and invitations go too."""
    group_ids = (
        await session.scalars(
            select(Membership.group_id)
            .where(col(Membership.persona_id) == persona_id)
            .order_by(col(Membership.group_id))  # one lock order, so two of these never deadlock
        )
    ).all()
    for group_id in group_ids:
        group = await session.get(Group, group_id)
        if group is None:
            continue
        await lock_group(session, group)
        membership = await session.scalar(
            select(Membership)
            .where(col(Membership.group_id) == group_id, col(Membership.persona_id) == persona_id)
            .execution_options(populate_existing=True)
        )
        if membership is None:
            continue
        if membership.role == "owner" and await owner_count(session, group_id) <= 1:
            new_owner = await successor(session, group_id, persona_id)
            if new_owner is not None:
                await set_role(session, outbox, group, new_owner, "owner")
        await remove(session, outbox, group, membership)
        await session.refresh(group, ["member_count"])
        if group.member_count <= 0 and group.archived_at is None:
            group.archived_at = group.updated_at = utcnow()
            await outbox.publish(session, "group.archived", str(group.id), group_event(group))
            await records.publish_group(session, outbox, group, "archived")
        session.add(group)
        await session.flush()
    await _drop_steward(session, persona_id)
    await session.execute(delete(JoinRequest).where(col(JoinRequest.persona_id) == persona_id))
    await session.execute(delete(Invitation).where(col(Invitation.persona_id) == persona_id))


async def _drop_steward(session: AsyncSession, persona_id: uuid.UUID) -> None:
    """Takes the persona off every charter; a charter left without stewards gets the
    longest-standing owner."""
    pattern = f'%"{persona_id}"%'
    groups = (await session.scalars(select(Group).where(cast(Group.stewards, String).like(pattern)))).all()
    for group in groups:
        stewards = [s for s in group.stewards if s != str(persona_id)]
        if not stewards:
            owner = await session.scalar(
                select(Membership.persona_id)
                .where(col(Membership.group_id) == group.id, col(Membership.role) == "owner")
                .order_by(col(Membership.joined_at), col(Membership.id))
                .limit(1)
            )
            stewards = [str(owner)] if owner is not None else []
        group.stewards = stewards
        session.add(group)
    await session.flush()


async def members(
    session: AsyncSession, group: Group, *, role: str | None, after: uuid.UUID | None, limit: int
) -> Sequence[Row[Membership, str | None, str | None]]:
    """A page of the group's members in the order they joined, each with its handle and
    display name from the replica."""
    query = (
        select(Membership, PersonaReplica.handle, PersonaReplica.display_name)
        .join(PersonaReplica, col(PersonaReplica.id) == Membership.persona_id, isouter=True)
        .where(col(Membership.group_id) == group.id)
    )
    if role:
        query = query.where(col(Membership.role) == role)
    if after:
        query = query.where(col(Membership.id) > after)
    return (await session.execute(query.order_by(col(Membership.id)).limit(limit + 1))).all()


async def join(
    session: AsyncSession, outbox: Outbox, access: Access, persona_id: uuid.UUID, joins_per_hour: int
) -> tuple[Membership, bool]:
    """The caller joins an open group; returns the membership and whether it is new.
    Idempotent: joining twice, or fifty times at once, keeps one membership."""
    group = access.group
    if persona_id != access.persona_id:
        raise Forbidden("Members join themselves; invite others instead.")
    if access.membership is not None:
        return access.membership, False
    access.require_writable()
    if group.visibility != "open":
        raise Forbidden("This group takes join requests or invitations, not direct joins.")
    await check_join_budget(session, access.persona_id, joins_per_hour)
    joined, created = await add(session, outbox, group, persona_id)
    await session.commit()
    return joined, created


async def change_role(
    session: AsyncSession, outbox: Outbox, access: Access, persona_id: uuid.UUID, role: str
) -> Membership:
    """Owners (and administrators) change roles; a group always keeps one owner."""
    access.require("owner", admin=True, action="change roles")
    access.require_writable()
    group = access.group
    await access.relock(session)
    access.require("owner", admin=True, action="change roles")
    target = await membership_of(session, group.id, persona_id)
    if target is None:
        raise NotFound(NOT_MEMBER)
    await session.refresh(target)
    if target.role == "owner" and role != "owner" and await owner_count(session, group.id) <= 1:
        raise Conflict(LAST_OWNER, slug="last-owner")
    await set_role(session, outbox, group, target, role)
    await session.commit()
    return target


async def leave_or_remove(
    session: AsyncSession, outbox: Outbox, access: Access, persona_id: uuid.UUID
) -> None:
    """The caller leaves, or removes another member: moderators remove members, owners (and
    administrators) anyone; the last owner stays."""
    group = access.group
    access.require_writable()
    if persona_id != access.persona_id:
        access.require("owner", "moderator", admin=True, action="remove members")
    await access.relock(session)
    if persona_id != access.persona_id:
        access.require("owner", "moderator", admin=True, action="remove members")
    target = await membership_of(session, group.id, persona_id)
    if target is None:
        raise NotFound(NOT_MEMBER)
    await session.refresh(target)
    if (
        persona_id != access.persona_id
        and access.role == "moderator"
        and not access.is_admin
        and target.role != "member"
    ):
        raise Forbidden("Moderators remove members; only owners remove moderators and owners.")
    if target.role == "owner" and await owner_count(session, group.id) <= 1:
        raise Conflict(LAST_OWNER, slug="last-owner")
    await remove(session, outbox, group, target)
    await session.commit()
