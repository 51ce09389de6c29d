"""Groups' HTTP routes: purpose groups, their image, their archive and their health."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from kit.errors import Conflict
from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from services.groups import directory, health, idempotency, images, lifecycle
from services.groups.deps import (
    CurrentPersona,
    GroupAccess,
    IdempotencyKeyHeader,
    MediaDep,
    OutboxDep,
    SessionDep,
)
from services.groups.schemas import (
    GroupCreate,
    GroupHealth,
    GroupPublic,
    GroupUpdate,
    HealthStatus,
    MediaChoice,
    group_public,
)

router = APIRouter(prefix="/api/v1/groups", tags=["groups"])


@router.post(
    "",
    status_code=201,
    response_model=GroupPublic,
    summary="Create a purpose group",
    responses={
        404: {"description": "A steward the charter names is no active persona of this context"},
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
    assert caller.persona_id is not None
    return await idempotency.keys.create(
        session,
        response,
        owner=caller.persona_id,
        key=idempotency_key,
        scope="groups",
        request=body,
        make=lambda: lifecycle.create(session, outbox, caller, body),
        taken=Conflict(lifecycle.HANDLE_TAKEN),
    )


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
    rows = await directory.find_groups(
        session, caller, q=q, tag=tag, mine=mine, status=status, archived=archived, after=after, limit=limit
    )
    page = paginate(request, response, rows, limit=limit, scope="groups", key=lambda r: [str(r[0].id)])
    return Page[GroupPublic](
        items=[group_public(g, role) for g, role in page.items], next_cursor=page.next_cursor
    )


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
    tag = lifecycle.etag(access.group)
    if if_none_match is not None and lifecycle.etag_matches(tag, if_none_match):
        return Response(status_code=304, headers={"ETag": tag})
    response.headers["ETag"] = tag
    return group_public(access.group, access.role)


@router.patch(
    "/{group_id:uuid}",
    summary="Change a group's name, purpose, settings or charter",
    responses={
        403: {"description": "Not an owner"},
        409: {"description": "The group is archived, or hidden by moderation"},
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
    group = await lifecycle.update(session, outbox, access, body, if_match)
    response.headers["ETag"] = lifecycle.etag(group)
    return group_public(group, access.role)


@router.put(
    "/{group_id:uuid}/image",
    summary="Set a group's image to an uploaded image",
    responses={
        403: {"description": "Not an owner"},
        409: {"description": "The group is archived, or hidden by moderation"},
        422: {"description": "Not the caller's own ready upload, attached elsewhere, or not an image"},
        503: {"description": "Media did not answer; nothing changed"},
    },
)
async def set_image(
    body: MediaChoice,
    access: GroupAccess,
    session: SessionDep,
    outbox: OutboxDep,
    media: MediaDep,
    response: Response,
) -> GroupPublic:
    """Owners (and administrators), as for the charter. The upload (`POST /api/v1/media`)
    becomes the image, shown to whoever sees the group; the image it replaces is deleted."""
    group = await images.set_image(session, outbox, media, access, body.media_id)
    response.headers["ETag"] = lifecycle.etag(group)
    return group_public(group, access.role)


@router.delete(
    "/{group_id:uuid}/image",
    status_code=204,
    summary="Remove a group's image",
    responses={
        403: {"description": "Not an owner"},
        409: {"description": "The group is archived, or hidden by moderation"},
        503: {"description": "Media did not answer; nothing changed"},
    },
)
async def remove_image(access: GroupAccess, session: SessionDep, outbox: OutboxDep, media: MediaDep) -> None:
    """Owners (and administrators); its file is deleted at media. Removing no image changes
    nothing."""
    await images.remove_image(session, outbox, media, access)


@router.delete(
    "/{group_id:uuid}",
    status_code=204,
    summary="Archive a group, or delete it for good (administrators, with hard=true)",
    responses={
        403: {"description": "Not an owner, or a hard delete by a non-administrator"},
        409: {"description": "The group is hidden by moderation"},
    },
)
async def delete_group(
    access: GroupAccess,
    session: SessionDep,
    outbox: OutboxDep,
    hard: Annotated[bool, Query(description="Delete the group and its memberships for good")] = False,
) -> None:
    """Archiving makes a group read-only and restorable; repeating it changes nothing."""
    if hard:
        await lifecycle.delete_for_good(session, outbox, access)
    else:
        await lifecycle.archive(session, outbox, access)


@router.post(
    "/{group_id:uuid}/restore",
    summary="Restore an archived group",
    responses={
        403: {"description": "Not an owner or administrator"},
        409: {"description": "The group is hidden by moderation"},
    },
)
async def restore_group(access: GroupAccess, session: SessionDep, outbox: OutboxDep) -> GroupPublic:
    group = await lifecycle.restore(session, outbox, access)
    return group_public(group, access.role)


@router.get(
    "/{group_id:uuid}/health",
    summary="Whether the group is alive: activity, replies, concentration, retention, status",
    responses={403: {"description": "Not a member or administrator"}},
)
async def get_group_health(access: GroupAccess, session: SessionDep) -> GroupHealth:
    """For members and administrators; docs/groups-health.md defines every figure."""
    access.require_membership("a group's health")
    return await health.compute(session, access.group, health.now())
