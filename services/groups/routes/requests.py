"""Groups' HTTP routes: join requests (closed groups) and invitations (any group; the only way
into a secret one). One request and one invitation per persona and group, keyed by the
persona's id; a decided one can be renewed."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kit.db import SessionDep
from kit.errors import Conflict, Forbidden, NotFound
from kit.ids import new_id
from kit.outbox import OutboxDep
from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from kit.timeutil import utcnow
from services.groups import membership
from services.groups.access import Access, GroupAccess, check_join_budget, membership_of
from services.groups.models import Group, Invitation, JoinRequest, PersonaReplica
from services.groups.routes.members import membership_public
from services.groups.schemas import (
    Decision,
    GroupSummary,
    InvitationCreate,
    InvitationPublic,
    InvitationStatus,
    JoinRequestCreate,
    JoinRequestPublic,
    MembershipPublic,
    RequestStatus,
)
from services.groups.settings import SettingsDep

router = APIRouter(prefix="/api/v1/groups", tags=["membership"])

NO_REQUEST = "No join request from this persona."
NO_INVITATION = "No invitation for this persona."


def summary(group: Group) -> GroupSummary:
    return GroupSummary(
        id=group.id,
        handle=group.handle,
        name=group.name,
        visibility=group.visibility,
        archived=group.archived_at is not None,
    )


def request_public(r: JoinRequest, replica: PersonaReplica | None = None) -> JoinRequestPublic:
    return JoinRequestPublic(
        group_id=r.group_id,
        persona_id=r.persona_id,
        handle=replica.handle if replica else None,
        display_name=replica.display_name if replica else None,
        status=r.status,
        message=r.message,
        response=r.response,
        created_at=r.created_at,
        decided_at=r.decided_at,
    )


def invitation_public(i: Invitation, group: Group) -> InvitationPublic:
    return InvitationPublic(
        group=summary(group),
        persona_id=i.persona_id,
        invited_by=i.invited_by,
        status=i.status,
        message=i.message,
        created_at=i.created_at,
        decided_at=i.decided_at,
    )


async def _open_or_renew(
    session: AsyncSession, model: Any, group_id: uuid.UUID, persona_id: uuid.UUID, values: dict[str, Any]
) -> tuple[Any, bool]:
    """Creates a pending row, or renews a decided one; a pending one is returned as it is.
    Concurrent calls end with one row (``ON CONFLICT DO NOTHING``)."""
    dialect: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    now = utcnow()
    table = model.__table__
    inserted = (
        await session.execute(
            dialect.insert(table)
            .values(
                id=new_id(),
                group_id=group_id,
                persona_id=persona_id,
                status="pending",
                created_at=now,
                **values,
            )
            .on_conflict_do_nothing(index_elements=["group_id", "persona_id"])
            .returning(table.c.id)
        )
    ).scalar_one_or_none()
    created = inserted is not None
    if not created:
        renewed = (
            await session.execute(
                update(model)
                .where(
                    col(model.group_id) == group_id,
                    col(model.persona_id) == persona_id,
                    col(model.status) != "pending",
                )
                .values(status="pending", created_at=now, decided_at=None, **values)
                .returning(table.c.id)
            )
        ).scalar_one_or_none()
        created = renewed is not None
    row = await session.scalar(
        select(model)
        .where(col(model.group_id) == group_id, col(model.persona_id) == persona_id)
        .execution_options(populate_existing=True)
    )
    return row, created


async def _decide(
    session: AsyncSession, model: Any, group_id: uuid.UUID, persona_id: uuid.UUID, values: dict[str, Any]
) -> Any:
    """Moves a pending row to its decision, once: of two concurrent decisions one wins and
    the other gets 409."""
    table = model.__table__
    decided = (
        await session.execute(
            update(model)
            .where(
                col(model.group_id) == group_id,
                col(model.persona_id) == persona_id,
                col(model.status) == "pending",
            )
            .values(decided_at=utcnow(), **values)
            .returning(table.c.id)
        )
    ).scalar_one_or_none()
    row = await session.scalar(
        select(model)
        .where(col(model.group_id) == group_id, col(model.persona_id) == persona_id)
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFound(NO_REQUEST if model is JoinRequest else NO_INVITATION)
    if decided is None:
        raise Conflict(f"This was decided already: {row.status}.", slug="already-decided")
    return row


def _moderator(access: Access, action: str) -> None:
    access.require("owner", "moderator", admin=True, action=action)


@router.post(
    "/{group_id:uuid}/join-requests",
    status_code=201,
    summary="Ask to join a closed group",
    responses={
        200: {"description": "A pending request exists already"},
        409: {"description": "Already a member, the group is not closed, or it is archived"},
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
    access.require_writable()
    if access.membership is not None:
        raise Conflict("The caller is a member already.", slug="already-member")
    if access.group.visibility != "closed":
        raise Conflict("Only closed groups take join requests; open ones are joined directly.")
    await check_join_budget(session, access.persona_id, settings.joins_per_hour)
    row, created = await _open_or_renew(
        session,
        JoinRequest,
        access.group.id,
        access.persona_id,
        {"message": body.message, "response": None, "decided_by": None},
    )
    await session.commit()
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/api/v1/groups/{access.group.id}/join-requests/{access.persona_id}"
    return request_public(row)


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
    _moderator(access, "see join requests")
    scope = f"join-requests:{access.group.id}:{status}"
    after = decode_id_cursor(scope, cursor)
    query = (
        select(JoinRequest, PersonaReplica)
        .join(PersonaReplica, col(PersonaReplica.id) == JoinRequest.persona_id, isouter=True)
        .where(col(JoinRequest.group_id) == access.group.id, col(JoinRequest.status) == status)
    )
    if after:
        query = query.where(col(JoinRequest.id) > after)
    rows = (await session.execute(query.order_by(col(JoinRequest.id)).limit(limit + 1))).all()
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda r: [str(r[0].id)])
    return Page[JoinRequestPublic](
        items=[request_public(r, p) for r, p in page.items], next_cursor=page.next_cursor
    )


@router.get("/{group_id:uuid}/join-requests/{persona_id}", summary="One join request")
async def get_join_request(
    persona_id: uuid.UUID, access: GroupAccess, session: SessionDep
) -> JoinRequestPublic:
    """For the requester and the group's moderators."""
    if persona_id != access.persona_id:
        _moderator(access, "see join requests")
    row = await session.scalar(
        select(JoinRequest).where(
            col(JoinRequest.group_id) == access.group.id, col(JoinRequest.persona_id) == persona_id
        )
    )
    if row is None:
        raise NotFound(NO_REQUEST)
    return request_public(row, await session.get(PersonaReplica, persona_id))


@router.post(
    "/{group_id:uuid}/join-requests/{persona_id}/approve",
    status_code=201,
    summary="Approve a join request: the persona becomes a member",
    responses={409: {"description": "Decided already, or the group is archived"}},
)
async def approve_join_request(
    persona_id: uuid.UUID,
    access: GroupAccess,
    session: SessionDep,
    outbox: OutboxDep,
    body: Decision | None = None,
) -> MembershipPublic:
    _moderator(access, "approve join requests")
    access.require_writable()
    await _decide(
        session,
        JoinRequest,
        access.group.id,
        persona_id,
        {"status": "approved", "response": body.message if body else None, "decided_by": access.persona_id},
    )
    joined, _ = await membership.add(session, outbox, access.group, persona_id)
    await session.commit()
    return membership_public(joined)


@router.post(
    "/{group_id:uuid}/join-requests/{persona_id}/reject",
    summary="Reject a join request",
    responses={409: {"description": "Decided already, or the group is archived"}},
)
async def reject_join_request(
    persona_id: uuid.UUID, access: GroupAccess, session: SessionDep, body: Decision | None = None
) -> JoinRequestPublic:
    _moderator(access, "reject join requests")
    access.require_writable()
    row = await _decide(
        session,
        JoinRequest,
        access.group.id,
        persona_id,
        {"status": "rejected", "response": body.message if body else None, "decided_by": access.persona_id},
    )
    await session.commit()
    return request_public(row)


@router.delete(
    "/{group_id:uuid}/join-requests/{persona_id}",
    status_code=204,
    summary="Withdraw one's own join request",
    responses={409: {"description": "Decided already"}},
)
async def cancel_join_request(persona_id: uuid.UUID, access: GroupAccess, session: SessionDep) -> None:
    if persona_id != access.persona_id:
        raise Forbidden("Only the requester withdraws a join request.")
    await _decide(session, JoinRequest, access.group.id, persona_id, {"status": "cancelled"})
    await session.commit()


@router.post(
    "/{group_id:uuid}/invitations",
    status_code=201,
    summary="Invite a persona of the group's context",
    responses={
        200: {"description": "A pending invitation exists already"},
        404: {"description": "No such persona in this context"},
        409: {"description": "Already a member, or the group is archived"},
    },
)
async def create_invitation(
    body: InvitationCreate, access: GroupAccess, session: SessionDep, response: Response
) -> InvitationPublic:
    _moderator(access, "invite")
    access.require_writable()
    invitee = await session.get(PersonaReplica, body.persona_id)
    if invitee is None or invitee.context != access.group.context or invitee.status != "active":
        raise NotFound("No persona with this id.")
    if await membership_of(session, access.group.id, body.persona_id) is not None:
        raise Conflict("The persona is a member already.", slug="already-member")
    row, created = await _open_or_renew(
        session,
        Invitation,
        access.group.id,
        body.persona_id,
        {"message": body.message, "invited_by": access.persona_id},
    )
    await session.commit()
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
    _moderator(access, "see invitations")
    scope = f"invitations:{access.group.id}:{status}"
    after = decode_id_cursor(scope, cursor)
    query = select(Invitation).where(
        col(Invitation.group_id) == access.group.id, col(Invitation.status) == status
    )
    if after:
        query = query.where(col(Invitation.id) > after)
    rows = (await session.scalars(query.order_by(col(Invitation.id)).limit(limit + 1))).all()
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda r: [str(r.id)])
    return Page[InvitationPublic](
        items=[invitation_public(i, access.group) for i in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/{group_id:uuid}/invitations/{persona_id}/accept",
    status_code=201,
    summary="Accept an invitation: the invitee becomes a member",
    responses={403: {"description": "Not the invitee"}, 409: {"description": "Decided already, or archived"}},
)
async def accept_invitation(
    persona_id: uuid.UUID, access: GroupAccess, session: SessionDep, outbox: OutboxDep
) -> MembershipPublic:
    if persona_id != access.persona_id:
        raise Forbidden("Only the invitee accepts an invitation.")
    access.require_writable()
    await _decide(session, Invitation, access.group.id, persona_id, {"status": "accepted"})
    joined, _ = await membership.add(session, outbox, access.group, persona_id)
    await session.commit()
    return membership_public(joined)


@router.post(
    "/{group_id:uuid}/invitations/{persona_id}/decline",
    summary="Decline an invitation",
    responses={403: {"description": "Not the invitee"}, 409: {"description": "Decided already"}},
)
async def decline_invitation(
    persona_id: uuid.UUID, access: GroupAccess, session: SessionDep
) -> InvitationPublic:
    if persona_id != access.persona_id:
        raise Forbidden("Only the invitee declines an invitation.")
    row = await _decide(session, Invitation, access.group.id, persona_id, {"status": "declined"})
    await session.commit()
    return invitation_public(row, access.group)


@router.delete(
    "/{group_id:uuid}/invitations/{persona_id}",
    status_code=204,
    summary="Revoke a pending invitation",
    responses={409: {"description": "Decided already"}},
)
async def revoke_invitation(persona_id: uuid.UUID, access: GroupAccess, session: SessionDep) -> None:
    _moderator(access, "revoke invitations")
    await _decide(session, Invitation, access.group.id, persona_id, {"status": "revoked"})
    await session.commit()
