"""Records routes: matters and their legal holds (decision 0033, "Holds");
services/records/matters.py holds their rules."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from services.records import matters
from services.records.deps import CurrentOfficer, IdentityDep, SessionDep
from services.records.schemas import (
    HoldCreate,
    HoldPublic,
    HoldRelease,
    MatterClose,
    MatterCreate,
    MatterPublic,
    MatterStatus,
    hold_public,
    matter_public,
)

PREFIX = "/api/v1/records/matters"
MatterId = Annotated[uuid.UUID, Path(description="The matter's id.")]
HoldId = Annotated[uuid.UUID, Path(description="The hold's id.")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "`not-found`: no such matter (or hold in it)"}
}

router = APIRouter(
    prefix=PREFIX,
    tags=["records"],
    responses={
        403: {
            "description": "`not-an-officer`: not a records officer or administrator acting through a "
            "professional persona that still holds the role; `forbidden`: a client's token"
        }
    },
)


@router.post(
    "",
    status_code=201,
    summary="Open a matter (records officers)",
    responses={409: {"description": "`duplicate-reference`: another matter has this reference"}},
)
async def create_matter(
    body: MatterCreate, response: Response, session: SessionDep, officer: CurrentOfficer
) -> MatterPublic:
    matter = await matters.create(session, officer, body)
    response.headers["Location"] = f"{PREFIX}/{matter.id}"
    return matter_public(matter)


@router.get(
    "",
    summary="List matters, newest first (records officers)",
    responses={400: {"description": "`bad-cursor`: a cursor not of this list"}},
)
async def list_matters(
    request: Request,
    response: Response,
    session: SessionDep,
    officer: CurrentOfficer,
    status: Annotated[MatterStatus | None, Query(description="Only matters with this status")] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[MatterPublic]:
    scope = f"matters:{status or 'all'}"
    before = decode_id_cursor(scope, cursor)
    rows = await matters.find(session, officer, status=status, before=before, limit=limit)
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda m: [str(m.id)])
    return Page[MatterPublic](items=[matter_public(m) for m in page.items], next_cursor=page.next_cursor)


@router.get("/{matter_id}", summary="A matter (records officers)", responses=NOT_FOUND)
async def get_matter(matter_id: MatterId, session: SessionDep, officer: CurrentOfficer) -> MatterPublic:
    return matter_public(await matters.read(session, officer, matter_id))


@router.post(
    "/{matter_id}/close",
    summary="Close a matter (records officers)",
    responses={
        **NOT_FOUND,
        409: {"description": "`active-holds`: release its holds first; `matter-closed`: closed already"},
    },
)
async def close_matter(
    matter_id: MatterId, body: MatterClose, session: SessionDep, officer: CurrentOfficer
) -> MatterPublic:
    return matter_public(await matters.close(session, officer, matter_id, body.reason))


@router.post(
    "/{matter_id}/holds",
    status_code=201,
    summary="Place a legal hold (records officers)",
    responses={
        **NOT_FOUND,
        409: {
            "description": "`matter-closed`; `overlapping-hold`: an active hold of the matter shares a "
            "custodian or a group over an overlapping range"
        },
        422: {
            "description": "`empty-scope`: neither custodians nor groups; `unknown-custodian`: an account "
            "identity does not know; `validation`: `date_to` not after `date_from`, more than 100 "
            "custodians or groups, more than 50 terms, a term not of 2 to 100 characters"
        },
        503: {"description": "`identity-unavailable`: identity did not answer; nothing was written"},
    },
)
async def place_hold(
    matter_id: MatterId,
    body: HoldCreate,
    response: Response,
    session: SessionDep,
    officer: CurrentOfficer,
    identity: IdentityDep,
) -> HoldPublic:
    """Identity resolves each custodian to their personas (and audits it); the hold covers
    what they wrote, and what was written in its groups, within its range (and with a term,
    if it has any). Nothing it covers is disposed of until it is released."""
    hold, personas = await matters.place_hold(session, identity, officer, matter_id, body)
    response.headers["Location"] = f"{PREFIX}/{matter_id}/holds/{hold.id}"
    return hold_public(hold, personas)


@router.get(
    "/{matter_id}/holds",
    summary="List a matter's holds, newest first (records officers)",
    responses={**NOT_FOUND, 400: {"description": "`bad-cursor`: a cursor not of this list"}},
)
async def list_holds(
    request: Request,
    response: Response,
    matter_id: MatterId,
    session: SessionDep,
    officer: CurrentOfficer,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[HoldPublic]:
    scope = f"holds:{matter_id}"
    before = decode_id_cursor(scope, cursor)
    rows = await matters.find_holds(session, officer, matter_id, before=before, limit=limit)
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda h: [str(h[0].id)])
    return Page[HoldPublic](items=[hold_public(h, p) for h, p in page.items], next_cursor=page.next_cursor)


@router.get("/{matter_id}/holds/{hold_id}", summary="A hold (records officers)", responses=NOT_FOUND)
async def get_hold(
    matter_id: MatterId, hold_id: HoldId, session: SessionDep, officer: CurrentOfficer
) -> HoldPublic:
    return hold_public(*await matters.read_hold(session, officer, matter_id, hold_id))


@router.post(
    "/{matter_id}/holds/{hold_id}/release",
    summary="Release a hold (records officers)",
    responses={**NOT_FOUND, 409: {"description": "`hold-released`: released already; `matter-closed`"}},
)
async def release_hold(
    matter_id: MatterId, hold_id: HoldId, body: HoldRelease, session: SessionDep, officer: CurrentOfficer
) -> HoldPublic:
    """The next disposition may dispose of what it kept, under the policies in force."""
    return hold_public(*await matters.release(session, officer, matter_id, hold_id, body.reason))
