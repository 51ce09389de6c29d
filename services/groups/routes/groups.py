"""Groups' HTTP routes: purpose groups, their archive and their health."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import String, cast, delete, func, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kit.db import SessionDep
from kit.errors import APIError, Conflict, Forbidden, NotFound
from kit.outbox import OutboxDep
from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from kit.text import LIKE_ESCAPE, like_escape
from kit.timeutil import utcnow
from kit.tokens import CurrentPersona
from services.groups import health, idempotency, membership
from services.groups.access import GroupAccess
from services.groups.idempotency import IdempotencyKeyHeader
from services.groups.models import Group, Membership, PersonaReplica
from services.groups.schemas import (
    CharterPublic,
    GroupCreate,
    GroupHealth,
    GroupPublic,
    GroupUpdate,
    HealthStatus,
)

router = APIRouter(prefix="/api/v1/groups", tags=["groups"])

HANDLE_TAKEN = "A group with this handle exists in this context."


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


async def check_stewards(
    session: AsyncSession, stewards: list[uuid.UUID], context: str, known: uuid.UUID
) -> list[str]:
    """Stewards are active personas of the group's context; any other id answers as a
    persona that does not exist."""
    others = [s for s in stewards if s != known]
    if others:
        found = set(
            (
                await session.scalars(
                    select(PersonaReplica.id).where(
                        col(PersonaReplica.id).in_(others),
                        col(PersonaReplica.context) == context,
                        col(PersonaReplica.status) == "active",
                    )
                )
            ).all()
        )
        missing = [s for s in others if s not in found]
        if missing:
            raise NotFound(f"No persona with id {missing[0]} in this context.")
    return [str(s) for s in dict.fromkeys(stewards)]


def _tags(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(t.lower() for t in tags))


@router.post(
    "",
    status_code=201,
    response_model=GroupPublic,
    summary="Create a purpose group",
    responses={
        409: {"description": "The handle is taken in this context"},
        422: {"description": "Invalid fields, or an Idempotency-Key reused for another request"},
    },
)
async def create_group(
    body: GroupCreate,
    session: SessionDep,
    caller: CurrentPersona,
    outbox: OutboxDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> GroupPublic | JSONResponse:
    """The group's context is the caller's; the caller becomes its owner and, unless the
    charter names others, its steward."""
    assert caller.persona_id is not None and caller.context is not None
    print_ = idempotency.fingerprint("groups", body)
    replayed = await idempotency.replay(session, caller.persona_id, idempotency_key, print_)
    if replayed is not None:
        return replayed
    stewards = await check_stewards(
        session, body.charter.stewards or [caller.persona_id], caller.context, caller.persona_id
    )
    taken = await session.scalar(
        select(Group.id).where(col(Group.context) == caller.context, col(Group.handle) == body.handle)
    )
    if taken is not None:
        replayed = await idempotency.replay(session, caller.persona_id, idempotency_key, print_)
        if replayed is not None:  # a concurrent repeat won the race
            return replayed
        raise Conflict(HANDLE_TAKEN)
    group = Group(
        context=caller.context,
        name=body.name,
        handle=body.handle,
        purpose=body.purpose,
        description=body.description,
        tags=_tags(body.tags),
        visibility=body.visibility,
        objective=body.charter.objective,
        audience=body.charter.audience,
        success_indicators=body.charter.success_indicators,
        review_at=body.charter.review_at,
        stewards=stewards,
        member_count=0,
        created_by=caller.persona_id,
    )
    session.add(group)
    try:
        await session.flush()
        await outbox.publish(session, "group.created", str(group.id), membership.group_event(group))
        await membership.add(session, outbox, group, caller.persona_id, "owner")
        await session.refresh(group)
        created = public(group, "owner")
        location = f"/api/v1/groups/{group.id}"
        idempotency.remember(session, caller.persona_id, idempotency_key, print_, 201, created, location)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        replayed = await idempotency.replay(session, caller.persona_id, idempotency_key, print_)
        if replayed is not None:
            return replayed
        raise Conflict(HANDLE_TAKEN) from None
    response.headers["Location"] = location
    return created


@router.get("", summary="List and search groups of the caller's context")
async def list_groups(
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    q: Annotated[
        str | None,
        Query(
            min_length=2,
            max_length=100,
            pattern=r"^[^\x00-\x1f\x7f]+$",
            description="Text in name, handle or purpose",
        ),
    ] = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=40, pattern=r"^[\w-]+$")] = None,
    mine: Annotated[bool, Query(description="Only groups the caller is a member of")] = False,
    status: Annotated[HealthStatus | None, Query(description="Only groups of this health status")] = None,
    archived: Annotated[bool, Query(description="Archived groups instead of active ones")] = False,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[GroupPublic]:
    """Newest first. Secret groups appear only to their members (and administrators)."""
    after = decode_id_cursor("groups", cursor)
    my_role = (
        select(Membership.role)
        .where(col(Membership.group_id) == Group.id, col(Membership.persona_id) == caller.persona_id)
        .scalar_subquery()
    )
    query = select(Group, my_role.label("my_role")).where(col(Group.context) == caller.context)
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
    rows = (await session.execute(query.order_by(col(Group.id).desc()).limit(limit + 1))).all()
    page = paginate(request, response, rows, limit=limit, scope="groups", key=lambda r: [str(r[0].id)])
    return Page[GroupPublic](items=[public(g, role) for g, role in page.items], next_cursor=page.next_cursor)


class PreconditionFailed(APIError):
    status, title, slug = 412, "Precondition Failed", "precondition-failed"


def etag(group: Group) -> str:
    return f'"{group.id.hex[:8]}-{int(group.updated_at.timestamp() * 1_000_000):x}"'


def _matches(tag: str, header: str) -> bool:
    return header.strip() == "*" or tag in {t.strip() for t in header.split(",")}


@router.get(
    "/{group_id:uuid}",
    summary="A group",
    response_model=GroupPublic,
    responses={304: {"description": "Unchanged since the ETag in If-None-Match"}},
)
async def get_group(
    access: GroupAccess,
    response: Response,
    if_none_match: Annotated[str | None, Header(max_length=1000)] = None,
) -> GroupPublic | Response:
    tag = etag(access.group)
    if if_none_match is not None and _matches(tag, if_none_match):
        return Response(status_code=304, headers={"ETag": tag})
    response.headers["ETag"] = tag
    return public(access.group, access.role)


@router.patch(
    "/{group_id:uuid}",
    summary="Change a group's name, purpose, settings or charter",
    responses={
        403: {"description": "Not an owner"},
        409: {"description": "The group is archived"},
        412: {"description": "If-Match names an older version"},
    },
)
async def update_group(
    body: GroupUpdate,
    access: GroupAccess,
    session: SessionDep,
    outbox: OutboxDep,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=1000)] = None,
) -> GroupPublic:
    """Owners (and administrators) only; the context and handle never change. With
    ``If-Match``, a change based on a stale copy is refused with 412."""
    access.require("owner", admin=True, action="change its settings")
    await access.relock(session)
    access.require("owner", admin=True, action="change its settings")
    access.require_writable()
    group = access.group
    if if_match is not None and not _matches(etag(group), if_match):
        raise PreconditionFailed("The group changed since it was read; read it again.")
    changes = body.model_dump(exclude_unset=True, exclude={"charter"})
    if "tags" in changes:
        changes["tags"] = _tags(changes["tags"])
    for name, value in changes.items():
        setattr(group, name, value)
    if body.charter is not None:
        charter = body.charter.model_dump(exclude_unset=True)
        if "stewards" in charter:
            charter["stewards"] = await check_stewards(
                session, body.charter.stewards or [], group.context, access.persona_id
            )
        for name, value in charter.items():
            setattr(group, name, value)
    group.updated_at = utcnow()
    session.add(group)
    await session.flush()
    await outbox.publish(session, "group.updated", str(group.id), membership.group_event(group))
    await session.commit()
    response.headers["ETag"] = etag(group)
    return public(group, access.role)


@router.delete(
    "/{group_id:uuid}",
    status_code=204,
    summary="Archive a group, or delete it for good (administrators, with hard=true)",
    responses={403: {"description": "Not an owner, or a hard delete by a non-administrator"}},
)
async def delete_group(
    access: GroupAccess,
    session: SessionDep,
    outbox: OutboxDep,
    hard: Annotated[bool, Query(description="Delete the group and its memberships for good")] = False,
) -> None:
    """Archiving makes a group read-only and restorable; repeating it changes nothing."""
    group = access.group
    if hard:
        if not access.is_admin:
            raise Forbidden("Only administrators delete a group for good.")
        data = {"id": str(group.id), "context": group.context, "updated_at": utcnow().isoformat()}
        await session.execute(delete(Group).where(col(Group.id) == group.id))
        await outbox.publish(session, "group.deleted", str(group.id), data)
        await session.commit()
        return
    access.require("owner", admin=True, action="archive it")
    if group.archived_at is not None:
        return
    group.archived_at = group.updated_at = utcnow()
    session.add(group)
    await session.flush()
    await outbox.publish(session, "group.archived", str(group.id), membership.group_event(group))
    await session.commit()


@router.post(
    "/{group_id:uuid}/restore",
    summary="Restore an archived group",
    responses={403: {"description": "Not an owner or administrator"}},
)
async def restore_group(access: GroupAccess, session: SessionDep, outbox: OutboxDep) -> GroupPublic:
    access.require("owner", admin=True, action="restore it")
    group = access.group
    if group.archived_at is not None:
        group.archived_at = None
        group.updated_at = utcnow()
        session.add(group)
        await session.flush()
        await outbox.publish(session, "group.restored", str(group.id), membership.group_event(group))
        await session.commit()
    return public(group, access.role)


@router.get(
    "/{group_id:uuid}/health",
    summary="Whether the group is alive: activity, replies, concentration, retention, status",
    responses={403: {"description": "Not a member or administrator"}},
)
async def get_group_health(access: GroupAccess, session: SessionDep) -> GroupHealth:
    """For members and administrators; docs/groups-health.md defines every figure."""
    if access.membership is None and not access.is_admin:
        raise Forbidden("Only members see a group's health.")
    return await health.compute(session, access.group, health.now())
