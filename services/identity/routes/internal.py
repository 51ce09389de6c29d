"""The calls records makes (decision 0033): the personas of the accounts a hold or an export
names, resolved and audited for one matter and one officer, and the personas a persona's own
export covers; and media's question whether a reader sees a persona, and so its avatar
(decision 0036). Behind the internal token, and left out of the published API."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from kit.internal import ServiceToken
from services.identity import avatars, records
from services.identity.deps import SessionDep
from services.identity.schemas import CustodiansAnswer, CustodiansRequest, OwnerPersonas

router = APIRouter(prefix="/internal/records", include_in_schema=False, dependencies=[ServiceToken])
media_router = APIRouter(prefix="/internal/media", include_in_schema=False, dependencies=[ServiceToken])


@router.post("/custodians", summary="The personas of the accounts a matter names (audited)")
async def resolve_custodians(body: CustodiansRequest, session: SessionDep) -> CustodiansAnswer:
    """Accounts identity does not know are listed under ``unknown``; the resolution of the
    others is in the audit log before the answer leaves."""
    return await records.resolve_custodians(session, body)


@router.get("/owners/{persona_id}", summary="The personas a persona's own export covers")
async def owner_personas(persona_id: uuid.UUID, session: SessionDep) -> OwnerPersonas:
    """404 for a persona identity does not know."""
    return await records.owner_personas(session, persona_id)


@media_router.get(
    "/personas/{persona_id}", status_code=204, summary="Whether a reader sees a persona (and its avatar)"
)
async def persona_seen(
    persona_id: uuid.UUID,
    session: SessionDep,
    reader: Annotated[uuid.UUID, Query(description="The reading persona's id.")],
) -> Response:
    """204 when ``GET /api/v1/personas/{id}`` would show the persona to a token of the reader;
    404 otherwise (a missing persona, one of the other context, one not active, a reader that
    is not an active persona)."""
    await avatars.seen_by(session, persona_id, reader)
    return Response(status_code=204)
