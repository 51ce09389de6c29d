"""Groups' HTTP routes about the caller across groups: memberships and invitations, each in
one call."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlmodel import col, select

from kit.db import SessionDep
from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from kit.tokens import CurrentPersona
from services.groups.models import Group, Invitation, Membership
from services.groups.routes.requests import invitation_public, summary
from services.groups.schemas import InvitationPublic, MyMembershipPublic

router = APIRouter(prefix="/api/v1/groups", tags=["membership"])


@router.get("/memberships", summary="The caller's memberships, with role and joined_at, earliest first")
async def list_my_memberships(
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[MyMembershipPublic]:
    after = decode_id_cursor("my-memberships", cursor)
    query = (
        select(Membership, Group)
        .join(Group, col(Group.id) == Membership.group_id)
        .where(col(Membership.persona_id) == caller.persona_id, col(Group.context) == caller.context)
    )
    if after:
        query = query.where(col(Membership.id) > after)
    rows = (await session.execute(query.order_by(col(Membership.id)).limit(limit + 1))).all()
    page = paginate(
        request, response, rows, limit=limit, scope="my-memberships", key=lambda r: [str(r[0].id)]
    )
    return Page[MyMembershipPublic](
        items=[
            MyMembershipPublic(group=summary(g), role=m.role, joined_at=m.joined_at) for m, g in page.items
        ],
        next_cursor=page.next_cursor,
    )


@router.get("/invitations", summary="The caller's pending invitations, oldest first")
async def list_my_invitations(
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[InvitationPublic]:
    after = decode_id_cursor("my-invitations", cursor)
    query = (
        select(Invitation, Group)
        .join(Group, col(Group.id) == Invitation.group_id)
        .where(
            col(Invitation.persona_id) == caller.persona_id,
            col(Invitation.status) == "pending",
            col(Group.context) == caller.context,
        )
    )
    if after:
        query = query.where(col(Invitation.id) > after)
    rows = (await session.execute(query.order_by(col(Invitation.id)).limit(limit + 1))).all()
    page = paginate(
        request, response, rows, limit=limit, scope="my-invitations", key=lambda r: [str(r[0].id)]
    )
    return Page[InvitationPublic](
        items=[invitation_public(i, g) for i, g in page.items], next_cursor=page.next_cursor
    )
