"""Groups' HTTP routes: join requests (closed groups) and invitations (any group; the only way
into a secret one); services/groups/joining.py holds their rules."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from services.groups import joining
from services.groups.deps import GroupAccess, OutboxDep, SessionDep, SettingsDep
from services.groups.schemas import (
    Decision,
    InvitationCreate,
    InvitationPublic,
    InvitationStatus,
    JoinRequestCreate,
    JoinRequestPublic,
    MembershipPublic,
    RequestStatus,
    invitation_public,
    join_request_public,
    membership_public,
)

router = APIRouter(prefix="/api/v1/groups", tags=["membership"])


@router.post(
    "/{group_id:uuid}/join-requests",
    status_code=201,
    summary="Ask to join a closed group",
    responses={
        200: {"description": "A pending request exists already", "model": JoinRequestPublic},
        409: {"description": "Already a member, the group is not closed, archived or hidden by moderation"},
        429: {"description": "Too many joins and join requests in the last hour"},
    },
)
async def create_join_request(
    body: JoinRequestCreate,
    access: GroupAccess,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> JoinRequestPublic:
    row, created = await joining.request_to_join(session, access, body.message, settings.joins_per_hour)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/api/v1/groups/{access.group.id}/join-requests/{access.persona_id}"
    return join_request_public(row)


@router.get("/{group_id:uuid}/join-requests", summary="A group's join requests, oldest first")
async def list_join_requests(
    request: Request,
    response: Response,
    access: GroupAccess,
    session: SessionDep,
    status: Annotated[RequestStatus, Query()] = "pending",
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[JoinRequestPublic]:
    joining.require_moderator(access, "see join requests")
    scope = f"join-requests:{access.group.id}:{status}"
    after = decode_id_cursor(scope, cursor)
    rows = await joining.join_requests(session, access.group, status=status, after=after, limit=limit)
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda r: [str(r[0].id)])
    return Page[JoinRequestPublic](
        items=[join_request_public(r, p) for r, p in page.items], next_cursor=page.next_cursor
    )


@router.get("/{group_id:uuid}/join-requests/{persona_id}", summary="One join request")
async def get_join_request(
    persona_id: uuid.UUID, access: GroupAccess, session: SessionDep
) -> JoinRequestPublic:
    """For the requester and the group's moderators."""
    row, replica = await joining.join_request(session, access, persona_id)
    return join_request_public(row, replica)


@router.post(
    "/{group_id:uuid}/join-requests/{persona_id}/approve",
    status_code=201,
    summary="Approve a join request: the persona becomes a member",
    responses={409: {"description": "Decided already, or the group is archived or hidden by moderation"}},
)
async def approve_join_request(
    persona_id: uuid.UUID,
    access: GroupAccess,
    session: SessionDep,
    outbox: OutboxDep,
    body: Decision | None = None,
) -> MembershipPublic:
    joined = await joining.approve(session, outbox, access, persona_id, body.message if body else None)
    return membership_public(joined)


@router.post(
    "/{group_id:uuid}/join-requests/{persona_id}/reject",
    summary="Reject a join request",
    responses={409: {"description": "Decided already, or the group is archived or hidden by moderation"}},
)
async def reject_join_request(
    persona_id: uuid.UUID, access: GroupAccess, session: SessionDep, body: Decision | None = None
) -> JoinRequestPublic:
    row = await joining.reject(session, access, persona_id, body.message if body else None)
    return join_request_public(row)


@router.delete(
    "/{group_id:uuid}/join-requests/{persona_id}",
    status_code=204,
    summary="Withdraw one's own join request",
    responses={409: {"description": "Decided already, or hidden by moderation"}},
)
async def cancel_join_request(persona_id: uuid.UUID, access: GroupAccess, session: SessionDep) -> None:
    await joining.withdraw(session, access, persona_id)


@router.post(
    "/{group_id:uuid}/invitations",
    status_code=201,
    summary="Invite a persona of the group's context",
    responses={
        200: {"description": "A pending invitation exists already", "model": InvitationPublic},
        404: {"description": "No such persona in this context"},
        409: {"description": "Already a member, or the group is archived or hidden by moderation"},
    },
)
async def create_invitation(
    body: InvitationCreate, access: GroupAccess, session: SessionDep, response: Response
) -> InvitationPublic:
    row, created = await joining.invite(session, access, body.persona_id, body.message)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/api/v1/groups/{access.group.id}/invitations/{body.persona_id}"
    return invitation_public(row, access.group)


@router.get("/{group_id:uuid}/invitations", summary="A group's invitations, oldest first")
async def list_invitations(
    request: Request,
    response: Response,
    access: GroupAccess,
    session: SessionDep,
    status: Annotated[InvitationStatus, Query()] = "pending",
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[InvitationPublic]:
    joining.require_moderator(access, "see invitations")
    scope = f"invitations:{access.group.id}:{status}"
    after = decode_id_cursor(scope, cursor)
    rows = await joining.invitations(session, access.group, status=status, after=after, limit=limit)
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda r: [str(r.id)])
    return Page[InvitationPublic](
        items=[invitation_public(i, access.group) for i in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/{group_id:uuid}/invitations/{persona_id}/accept",
    status_code=201,
    summary="Accept an invitation: the invitee becomes a member",
    responses={
        403: {"description": "Not the invitee"},
        409: {"description": "Decided already, or archived or hidden by moderation"},
    },
)
async def accept_invitation(
    persona_id: uuid.UUID, access: GroupAccess, session: SessionDep, outbox: OutboxDep
) -> MembershipPublic:
    joined = await joining.accept(session, outbox, access, persona_id)
    return membership_public(joined)


@router.post(
    "/{group_id:uuid}/invitations/{persona_id}/decline",
    summary="Decline an invitation",
    responses={
        403: {"description": "Not the invitee"},
        409: {"description": "Decided already, or hidden by moderation"},
    },
)
async def decline_invitation(
    persona_id: uuid.UUID, access: GroupAccess, session: SessionDep
) -> InvitationPublic:
    row = await joining.decline(session, access, persona_id)
    return invitation_public(row, access.group)


@router.delete(
    "/{group_id:uuid}/invitations/{persona_id}",
    status_code=204,
    summary="Revoke a pending invitation",
    responses={409: {"description": "Decided already, or hidden by moderation"}},
)
async def revoke_invitation(persona_id: uuid.UUID, access: GroupAccess, session: SessionDep) -> None:
    await joining.revoke(session, access, persona_id)
