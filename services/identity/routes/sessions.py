"""The owner's sign-in sessions and app grants: ``GET|DELETE /api/v1/me/sessions`` (decision 0035;
services/identity/sessions.py holds which a token sees)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from services.identity import sessions
from services.identity.deps import CallerDep, SessionDep
from services.identity.schemas import SessionPublic

router = APIRouter(prefix="/api/v1/me/sessions", tags=["accounts"])


@router.get("", summary="Where the signed-in persona is signed in: browsers, apps, password sign-ins")
async def list_sessions(
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CallerDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[SessionPublic]:
    """With a professional persona's token: the account's browsers signed in at the sign-in
    page, its password sign-ins, and the apps granted the professional persona. With a personal
    persona's token: only the apps granted the personal persona. Days, not times."""
    after = decode_id_cursor("sessions", cursor)
    items = await sessions.visible(session, caller.persona, after=after, limit=limit)
    return paginate(request, response, items, limit=limit, scope="sessions", key=lambda s: [str(s.id)])


@router.delete(
    "/{session_id}",
    status_code=204,
    summary="Sign a browser out, or revoke an app's grant or a password sign-in",
    responses={404: {"description": "No such session among those this token sees"}},
)
async def end_session(session_id: uuid.UUID, session: SessionDep, caller: CallerDep) -> None:
    """An app's grant or a password sign-in stops refreshing at once; its access tokens run
    out within minutes."""
    await sessions.end(session, caller.persona, session_id)
