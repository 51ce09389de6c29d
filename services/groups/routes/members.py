"""Groups' HTTP routes: members, joining, leaving, removals and role changes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from services.groups import membership
from services.groups.deps import GroupAccess, OutboxDep, SessionDep, SettingsDep
from services.groups.schemas import (
    MemberPublic,
    MembershipPublic,
    MemberUpdate,
    Role,
    member_public,
    membership_public,
)

router = APIRouter(prefix="/api/v1/groups", tags=["membership"])


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
    scope = f"members:{access.group.id}"
    after = decode_id_cursor(scope, cursor)
    rows = await membership.members(session, access.group, role=role, after=after, limit=limit)
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda r: [str(r[0].id)])
    return Page[MemberPublic](
        items=[member_public(m, h, d) for m, h, d in page.items], next_cursor=page.next_cursor
    )


@router.put(
    "/{group_id:uuid}/members/{persona_id}",
    summary="Join an open group",
    responses={
        200: {"description": "Already a member"},
        201: {"description": "Joined", "model": MembershipPublic},
        403: {"description": "The group is not open, or the persona is not the caller"},
        409: {"description": "The group is archived, or hidden by moderation"},
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
    joined, created = await membership.join(session, outbox, access, persona_id, settings.joins_per_hour)
    response.status_code = 201 if created else 200
    return membership_public(joined)


@router.patch(
    "/{group_id:uuid}/members/{persona_id}",
    summary="Change a member's role",
    responses={
        403: {"description": "Not an owner"},
        404: {"description": "Not a member"},
        409: {
            "description": "The last owner would step down, or the group is archived or hidden by moderation"
        },
    },
)
async def update_member(
    persona_id: uuid.UUID, body: MemberUpdate, access: GroupAccess, session: SessionDep, outbox: OutboxDep
) -> MembershipPublic:
    """Owners (and administrators) change roles; a group always keeps one owner."""
    changed = await membership.change_role(session, outbox, access, persona_id, body.role)
    return membership_public(changed)


@router.delete(
    "/{group_id:uuid}/members/{persona_id}",
    status_code=204,
    summary="Leave a group, or remove a member",
    responses={
        403: {"description": "Moderators remove members; owners remove anyone"},
        404: {"description": "Not a member"},
        409: {"description": "The last owner, or the group is archived or hidden by moderation"},
    },
)
async def remove_member(
    persona_id: uuid.UUID, access: GroupAccess, session: SessionDep, outbox: OutboxDep
) -> None:
    await membership.leave_or_remove(session, outbox, access, persona_id)
