"""Finding groups: the list and search of the caller's context's groups, and the caller's own
memberships and pending invitations across groups. Each reads one page of rows (``limit + 1``,
the extra one telling that another page follows) after the cursor's row. Moderation's rule
is access's (``access.moderation_allows``): a group under moderation is in no list, but a
hidden one in its owners'."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Row, String, cast, func, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from domain.principal import Principal
from kit.text import LIKE_ESCAPE, like_escape
from services.groups import health
from services.groups.access import moderation_allows
from services.groups.models import Group, Invitation, Membership


async def find_groups(
    session: AsyncSession,
    caller: Principal,
    *,
    q: str | None,
    tag: str | None,
    mine: bool,
    status: str | None,
    archived: bool,
    after: uuid.UUID | None,
    limit: int,
) -> Sequence[Row[Group, str | None]]:
    """Groups of the caller's context with the caller's role in each, newest first. Secret
    groups appear only to their members (and administrators), hidden ones only to their
    owners, removed ones to no one."""
    my_role = (
        select(Membership.role)
        .where(col(Membership.group_id) == Group.id, col(Membership.persona_id) == caller.persona_id)
        .scalar_subquery()
    )
    query = select(Group, my_role.label("my_role")).where(
        col(Group.context) == caller.context, moderation_allows(my_role)
    )
    if mine:
        query = query.where(my_role.is_not(None))
    elif not caller.has_role("admin"):
        query = query.where(or_(col(Group.visibility) != "secret", my_role.is_not(None)))
    query = query.where(col(Group.archived_at).is_not(None) if archived else col(Group.archived_at).is_(None))
    if q:
        pattern = f"%{like_escape(q)}%"
        query = query.where(
            or_(
                func.lower(Group.name).like(pattern, escape=LIKE_ESCAPE),
                func.lower(Group.handle).like(pattern, escape=LIKE_ESCAPE),
                func.lower(Group.purpose).like(pattern, escape=LIKE_ESCAPE),
            )
        )
    if tag:
        tag_pattern = f'%"{like_escape(tag)}"%'
        query = query.where(func.lower(cast(Group.tags, String)).like(tag_pattern, escape=LIKE_ESCAPE))
    if status:
        query = query.where(health.status_expression(health.now()) == status)
    if after:
        query = query.where(col(Group.id) < after)
    rows: Sequence[Row[Group, str | None]] = (
        await session.execute(query.order_by(col(Group.id).desc()).limit(limit + 1))
    ).all()
    return rows


async def my_memberships(
    session: AsyncSession, caller: Principal, *, after: uuid.UUID | None, limit: int
) -> Sequence[Row[Membership, Group]]:
    """The caller's memberships in groups of its context, with their groups, earliest first."""
    query = (
        select(Membership, Group)
        .join(Group, col(Group.id) == Membership.group_id)
        .where(
            col(Membership.persona_id) == caller.persona_id,
            col(Group.context) == caller.context,
            moderation_allows(col(Membership.role)),
        )
    )
    if after:
        query = query.where(col(Membership.id) > after)
    return (await session.execute(query.order_by(col(Membership.id)).limit(limit + 1))).all()


async def my_invitations(
    session: AsyncSession, caller: Principal, *, after: uuid.UUID | None, limit: int
) -> Sequence[Row[Invitation, Group]]:
    """The caller's pending invitations to groups of its context, with their groups, oldest
    first."""
    query = (
        select(Invitation, Group)
        .join(Group, col(Group.id) == Invitation.group_id)
        .where(
            col(Invitation.persona_id) == caller.persona_id,
            col(Invitation.status) == "pending",
            col(Group.context) == caller.context,
            col(Group.moderation).is_(None),  # an invitee is not an owner: moderation_allows
        )
    )
    if after:
        query = query.where(col(Invitation.id) > after)
    return (await session.execute(query.order_by(col(Invitation.id)).limit(limit + 1))).all()
