"""Groups' HTTP routes: members, joining, leaving, removals and role changes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlmodel import col, select

from kit.db import SessionDep
from kit.errors import Conflict, Forbidden, NotFound
from kit.outbox import OutboxDep
from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from services.groups import membership
from services.groups.access import GroupAccess, check_join_budget, membership_of
from services.groups.models import Membership, PersonaReplica
from services.groups.schemas import MemberPublic, MembershipPublic, MemberUpdate, Role
from services.groups.settings import SettingsDep

router = APIRouter(prefix="/api/v1/groups", tags=["membership"])

NOT_MEMBER = "The persona is not a member of this group."
LAST_OWNER = "The last owner cannot leave or step down: hand over ownership first."


def membership_public(m: Membership) -> MembershipPublic:
    return MembershipPublic(group_id=m.group_id, persona_id=m.persona_id, role=m.role, joined_at=m.joined_at)


@router.get(
    "/{group_id:uuid}/members",
    summary="A group's members, in the order they joined",
    responses={403: {"description": "A closed or secret group's members are for members"}},
)
async def list_members(
    request: Request,
    response: Response,
    access: GroupAccess,
    session: SessionDep,
    role: Annotated[Role | None, Query(description="Only members with this role")] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[MemberPublic]:
    access.require_member_view()
    group = access.group
    scope = f"members:{group.id}"
    after = decode_id_cursor(scope, cursor)
    query = (
        select(Membership, PersonaReplica.handle, PersonaReplica.display_name)
        .join(PersonaReplica, col(PersonaReplica.id) == Membership.persona_id, isouter=True)
        .where(col(Membership.group_id) == group.id)
    )
    if role:
        query = query.where(col(Membership.role) == role)
    if after:
        query = query.where(col(Membership.id) > after)
    rows = (await session.execute(query.order_by(col(Membership.id)).limit(limit + 1))).all()
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda r: [str(r[0].id)])
    return Page[MemberPublic](
        items=[
            MemberPublic(
                persona_id=m.persona_id, handle=h, display_name=d, role=m.role, joined_at=m.joined_at
            )
            for m, h, d in page.items
        ],
        next_cursor=page.next_cursor,
    )


@router.put(
    "/{group_id:uuid}/members/{persona_id}",
    summary="Join an open group",
    responses={
        200: {"description": "Already a member"},
        201: {"description": "Joined"},
        403: {"description": "The group is not open, or the persona is not the caller"},
        409: {"description": "The group is archived"},
        429: {"description": "Too many joins in the last hour"},
    },
)
async def add_member(
    persona_id: uuid.UUID,
    access: GroupAccess,
    session: SessionDep,
    outbox: OutboxDep,
    settings: SettingsDep,
    response: Response,
) -> MembershipPublic:
    """Idempotent: joining twice, or fifty times at once, keeps one membership."""
    group = access.group
    if persona_id != access.persona_id:
        raise Forbidden("Members join themselves; invite others instead.")
    if access.membership is not None:
        response.status_code = 200
        return membership_public(access.membership)
    access.require_writable()
    if group.visibility != "open":
        raise Forbidden("This group takes join requests or invitations, not direct joins.")
    await check_join_budget(session, access.persona_id, settings.joins_per_hour)
    joined, created = await membership.add(session, outbox, group, persona_id)
    await session.commit()
    response.status_code = 201 if created else 200
    return membership_public(joined)


@router.patch(
    "/{group_id:uuid}/members/{persona_id}",
    summary="Change a member's role",
    responses={
        403: {"description": "Not an owner"},
        404: {"description": "Not a member"},
        409: {"description": "The last owner would step down, or the group is archived"},
    },
)
async def update_member(
    persona_id: uuid.UUID, body: MemberUpdate, access: GroupAccess, session: SessionDep, outbox: OutboxDep
) -> MembershipPublic:
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
    if (
        target.role == "owner"
        and body.role != "owner"
        and await membership.owner_count(session, group.id) <= 1
    ):
        raise Conflict(LAST_OWNER, slug="last-owner")
    await membership.set_role(session, outbox, group, target, body.role)
    await session.commit()
    return membership_public(target)


@router.delete(
    "/{group_id:uuid}/members/{persona_id}",
    status_code=204,
    summary="Leave a group, or remove a member",
    responses={
        403: {"description": "Moderators remove members; owners remove anyone"},
        404: {"description": "Not a member"},
        409: {"description": "The last owner, or the group is archived"},
    },
)
async def remove_member(
    persona_id: uuid.UUID, access: GroupAccess, session: SessionDep, outbox: OutboxDep
) -> None:
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
    if target.role == "owner" and await membership.owner_count(session, group.id) <= 1:
        raise Conflict(LAST_OWNER, slug="last-owner")
    await membership.remove(session, outbox, group, target)
    await session.commit()
