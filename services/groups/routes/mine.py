"""Groups' HTTP routes about the caller across groups: memberships and invitations, each in
one call."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from services.groups import directory
from services.groups.deps import CurrentPersona, SessionDep
from services.groups.schemas import (
    InvitationPublic,
    MyMembershipPublic,
    invitation_public,
    my_membership_public,
)

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
    rows = await directory.my_memberships(session, caller, after=after, limit=limit)
    page = paginate(
        request, response, rows, limit=limit, scope="my-memberships", key=lambda r: [str(r[0].id)]
    )
    return Page[MyMembershipPublic](
        items=[my_membership_public(m, g) for m, g in page.items], next_cursor=page.next_cursor
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
    rows = await directory.my_invitations(session, caller, after=after, limit=limit)
    page = paginate(
        request, response, rows, limit=limit, scope="my-invitations", key=lambda r: [str(r[0].id)]
    )
    return Page[InvitationPublic](
        items=[invitation_public(i, g) for i, g in page.items], next_cursor=page.next_cursor
    )
