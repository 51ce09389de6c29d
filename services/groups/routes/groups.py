"""Groups' HTTP routes: purpose groups and their membership."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import String, cast, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from kit.db import SessionDep
from kit.errors import Conflict, Forbidden, NotFound
from kit.outbox import OutboxDep
from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from kit.text import LIKE_ESCAPE, like_escape
from kit.tokens import CurrentPersona
from services.groups.models import Group, Membership, PersonaReplica
from services.groups.schemas import (
    CharterPublic,
    GroupCreate,
    GroupPublic,
    MemberPublic,
    MembershipPublic,
)

router = APIRouter(prefix="/api/v1/groups", tags=["groups"])


def public(group: Group, role: str | None = None) -> GroupPublic:
    return GroupPublic(
        id=group.id,
        context=group.context,
        name=group.name,
        handle=group.handle,
        purpose=group.purpose,
        description=group.description,
        tags=group.tags,
        visibility=group.visibility,
        charter=CharterPublic(
            objective=group.objective,
            audience=group.audience,
            success_indicators=group.success_indicators,
            review_at=group.review_at,
            stewards=[uuid.UUID(s) for s in group.stewards],
        ),
        member_count=group.member_count,
        created_at=group.created_at,
        updated_at=group.updated_at,
        archived_at=group.archived_at,
        my_role=role,
    )


def group_event(group: Group) -> dict[str, object]:
    return {
        "id": str(group.id),
        "context": group.context,
        "handle": group.handle,
        "name": group.name,
        "visibility": group.visibility,
        "archived": group.archived_at is not None,
        "updated_at": group.updated_at.isoformat(),
    }


def membership_event(group: Group, membership: Membership) -> dict[str, object]:
    return {
        "group_id": str(group.id),
        "persona_id": str(membership.persona_id),
        "context": group.context,
        "role": membership.role,
    }


async def _membership(session: SessionDep, group_id: uuid.UUID, persona_id: uuid.UUID) -> Membership | None:
    return await session.scalar(
        select(Membership).where(Membership.group_id == group_id, Membership.persona_id == persona_id)
    )


async def visible_group(
    group_id: uuid.UUID, session: SessionDep, caller: CurrentPersona
) -> tuple[Group, Membership | None]:
    """A group of the other context, or a secret group the caller is not in, answers
    exactly as one that does not exist."""
    group = await session.get(Group, group_id)
    if group is None or group.context != caller.context:
        raise NotFound("No group with this id.")
    assert caller.persona_id is not None
    membership = await _membership(session, group.id, caller.persona_id)
    if group.visibility == "secret" and membership is None:
        raise NotFound("No group with this id.")
    return group, membership


VisibleGroup = Annotated[tuple[Group, Membership | None], Depends(visible_group)]


@router.post(
    "",
    status_code=201,
    summary="Create a purpose group",
    responses={409: {"description": "The handle is taken in this context"}},
)
async def create_group(
    body: GroupCreate, session: SessionDep, caller: CurrentPersona, outbox: OutboxDep, response: Response
) -> GroupPublic:
    """The group's context is the caller's; the caller becomes its owner and, unless the
    charter names others, its steward."""
    assert caller.persona_id is not None and caller.context is not None
    stewards = body.charter.stewards or [caller.persona_id]
    if any(s != caller.persona_id for s in stewards):
        known = set(
            (
                await session.scalars(
                    select(PersonaReplica.id).where(
                        col(PersonaReplica.id).in_(stewards),
                        col(PersonaReplica.context) == caller.context,
                        col(PersonaReplica.status) == "active",
                    )
                )
            ).all()
        )
        unknown = [str(s) for s in stewards if s != caller.persona_id and s not in known]
        if unknown:
            raise NotFound(f"No persona with id {unknown[0]} in this context.")
    group = Group(
        context=caller.context,
        name=body.name,
        handle=body.handle,
        purpose=body.purpose,
        description=body.description,
        tags=[t.lower() for t in dict.fromkeys(body.tags)],
        visibility=body.visibility,
        objective=body.charter.objective,
        audience=body.charter.audience,
        success_indicators=body.charter.success_indicators,
        review_at=body.charter.review_at,
        stewards=[str(s) for s in dict.fromkeys(stewards)],
        member_count=1,
        created_by=caller.persona_id,
    )
    owner = Membership(group_id=group.id, persona_id=caller.persona_id, role="owner")
    session.add(group)
    session.add(owner)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise Conflict("A group with this handle exists in this context.") from None
    await outbox.publish(session, "group.created", str(group.id), group_event(group))
    await outbox.publish(session, "membership.added", str(group.id), membership_event(group, owner))
    await session.commit()
    response.headers["Location"] = f"/api/v1/groups/{group.id}"
    return public(group, "owner")


@router.get("", summary="List and search groups of the caller's context")
async def list_groups(
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    q: Annotated[
        str | None, Query(min_length=2, max_length=100, description="Text in name, handle or purpose")
    ] = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    mine: Annotated[bool, Query(description="Only groups the caller is a member of")] = False,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[GroupPublic]:
    """Newest first. Secret groups appear only to their members."""
    after = decode_id_cursor("groups", cursor)
    my_role = (
        select(Membership.role)
        .where(Membership.group_id == Group.id, Membership.persona_id == caller.persona_id)
        .scalar_subquery()
    )
    query = select(Group, my_role.label("my_role")).where(Group.context == caller.context)
    if mine:
        query = query.where(my_role.is_not(None))
    else:
        query = query.where(or_(col(Group.visibility) != "secret", my_role.is_not(None)))
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
    if after:
        query = query.where(Group.id < after)
    rows = (await session.execute(query.order_by(col(Group.id).desc()).limit(limit + 1))).all()
    page = paginate(request, response, rows, limit=limit, scope="groups", key=lambda r: [str(r[0].id)])
    return Page[GroupPublic](items=[public(g, role) for g, role in page.items], next_cursor=page.next_cursor)


@router.get("/{group_id}", summary="A group")
async def get_group(found: VisibleGroup) -> GroupPublic:
    group, membership = found
    return public(group, membership.role if membership else None)


@router.put(
    "/{group_id}/members/{persona_id}",
    summary="Join an open group",
    responses={
        200: {"description": "Already a member"},
        201: {"description": "Joined"},
        403: {"description": "The group is not open, is archived, or the persona is not the caller"},
    },
)
async def add_member(
    persona_id: uuid.UUID,
    found: VisibleGroup,
    session: SessionDep,
    caller: CurrentPersona,
    outbox: OutboxDep,
    response: Response,
) -> MembershipPublic:
    """Idempotent: joining twice keeps one membership."""
    group, membership = found
    if persona_id != caller.persona_id:
        raise Forbidden("Members join themselves; invite others instead.")
    if membership is not None:
        response.status_code = 200
        return MembershipPublic.model_validate(membership, from_attributes=True)
    if group.archived_at is not None:
        raise Forbidden("The group is archived.")
    if group.visibility != "open":
        raise Forbidden("This group takes join requests or invitations, not direct joins.")
    membership = Membership(group_id=group.id, persona_id=persona_id, role="member")
    session.add(membership)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        existing = await _membership(session, group.id, persona_id)
        if existing is None:
            raise
        response.status_code = 200
        return MembershipPublic.model_validate(existing, from_attributes=True)
    await session.execute(
        update(Group).where(col(Group.id) == group.id).values(member_count=col(Group.member_count) + 1)
    )
    await outbox.publish(session, "membership.added", str(group.id), membership_event(group, membership))
    await session.commit()
    response.status_code = 201
    return MembershipPublic.model_validate(membership, from_attributes=True)


@router.delete(
    "/{group_id}/members/{persona_id}",
    status_code=204,
    summary="Leave a group",
    responses={403: {"description": "Not the caller, or the last owner"}},
)
async def remove_member(
    persona_id: uuid.UUID, found: VisibleGroup, session: SessionDep, caller: CurrentPersona, outbox: OutboxDep
) -> None:
    group, membership = found
    if persona_id != caller.persona_id:
        raise Forbidden("Only moderators remove other members.")
    if membership is None:
        raise NotFound("The persona is not a member of this group.")
    if membership.role == "owner":
        owners = await session.scalar(
            select(func.count()).where(Membership.group_id == group.id, Membership.role == "owner")
        )
        if (owners or 0) <= 1:
            raise Conflict("The last owner cannot leave: hand over ownership first.")
    await session.delete(membership)
    await session.execute(
        update(Group).where(col(Group.id) == group.id).values(member_count=col(Group.member_count) - 1)
    )
    await outbox.publish(session, "membership.removed", str(group.id), membership_event(group, membership))
    await session.commit()


@router.get("/{group_id}/members", summary="A group's members, earliest first")
async def list_members(
    request: Request,
    response: Response,
    found: VisibleGroup,
    session: SessionDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[MemberPublic]:
    group, _ = found
    after = decode_id_cursor(f"members:{group.id}", cursor)
    query = (
        select(Membership, PersonaReplica.handle, PersonaReplica.display_name)
        .join(PersonaReplica, col(PersonaReplica.id) == Membership.persona_id, isouter=True)
        .where(Membership.group_id == group.id)
    )
    if after:
        query = query.where(Membership.id > after)
    rows = (await session.execute(query.order_by(col(Membership.id)).limit(limit + 1))).all()
    page = paginate(
        request, response, rows, limit=limit, scope=f"members:{group.id}", key=lambda r: [str(r[0].id)]
    )
    return Page[MemberPublic](
        items=[
            MemberPublic(
                persona_id=m.persona_id, handle=h, display_name=d, role=m.role, joined_at=m.joined_at
            )
            for m, h, d in page.items
        ],
        next_cursor=page.next_cursor,
    )
