"""Records routes: disposition runs and their certificates (decision 0033, "Disposition");
services/records/disposition.py holds the run."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from services.records import disposition
from services.records.deps import CurrentOfficer, DatabaseDep, OutboxDep, RunsDep, SessionDep, SettingsDep
from services.records.schemas import DispositionPublic, disposition_public

PREFIX = "/api/v1/records/dispositions"

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
    status_code=202,
    summary="Start a disposition now (records officers)",
    responses={409: {"description": "`disposition-running`: a run is under way"}},
)
async def run_disposition(
    response: Response,
    session: SessionDep,
    officer: CurrentOfficer,
    database: DatabaseDep,
    outbox: OutboxDep,
    settings: SettingsDep,
    runs: RunsDep,
) -> DispositionPublic:
    """What the scheduled run does, now, under the policies in force. It goes on in the
    background: the answer is its certificate, `running`; read it again (`Location`) for the
    counts so far and its end. The owners destroy their rows as the events reach them."""
    certificate = await disposition.start_now(session, database, outbox, settings, officer, runs)
    response.headers["Location"] = f"{PREFIX}/{certificate.id}"
    return disposition_public(certificate)


@router.get(
    "",
    summary="List disposition certificates, newest first (records officers)",
    responses={400: {"description": "`bad-cursor`: a cursor not of this list"}},
)
async def list_dispositions(
    request: Request,
    response: Response,
    session: SessionDep,
    officer: CurrentOfficer,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[DispositionPublic]:
    before = decode_id_cursor("dispositions", cursor)
    rows = await disposition.find(session, officer, before=before, limit=limit)
    page = paginate(request, response, rows, limit=limit, scope="dispositions", key=lambda d: [str(d.id)])
    return Page[DispositionPublic](
        items=[disposition_public(d) for d in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/{disposition_id}",
    summary="A disposition certificate (records officers)",
    responses={404: {"description": "`not-found`: no such disposition"}},
)
async def get_disposition(
    disposition_id: Annotated[uuid.UUID, Path(description="The certificate's id.")],
    session: SessionDep,
    officer: CurrentOfficer,
) -> DispositionPublic:
    return disposition_public(await disposition.read(session, officer, disposition_id))
