"""Records routes: the records audit log (decision 0033): every call to the records API,
with its officer and matter, and what disposition did."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from services.records import audit
from services.records.deps import CurrentOfficer, SessionDep
from services.records.schemas import RecordsAuditEntryPublic, records_audit_entry_public

router = APIRouter(
    prefix="/api/v1/records/audit",
    tags=["records"],
    responses={
        403: {
            "description": "`not-an-officer`: not a records officer or administrator acting through a "
            "professional persona that still holds the role; `forbidden`: a client's token"
        }
    },
)


@router.get(
    "",
    summary="The records audit log, newest first (records officers)",
    responses={400: {"description": "`bad-cursor`: a cursor not of this list"}},
)
async def list_audit_entries(
    request: Request,
    response: Response,
    session: SessionDep,
    officer: CurrentOfficer,
    matter_id: Annotated[uuid.UUID | None, Query(description="Only the entries of this matter")] = None,
    action: Annotated[
        str | None,
        Query(min_length=1, max_length=60, pattern=r"^[a-z_.]+$", description="Only entries of this action"),
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[RecordsAuditEntryPublic]:
    """Reading the log is itself an entry (`audit.read`), written after the page is read."""
    scope = f"audit:{matter_id or ''}:{action or ''}"
    before = decode_id_cursor(scope, cursor)
    rows = await audit.read(
        session, officer.persona_id, matter_id=matter_id, action=action, before=before, limit=limit
    )
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda e: [str(e.id)])
    return Page[RecordsAuditEntryPublic](
        items=[records_audit_entry_public(e) for e in page.items], next_cursor=page.next_cursor
    )
