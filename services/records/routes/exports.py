"""Records routes: a matter's exports (decision 0033, "Exports")."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from kit.pagination import Cursor, Limit, Page, decode_id_cursor, paginate
from services.records import exports
from services.records.deps import CurrentOfficer, IdentityDep, SessionDep, SettingsDep
from services.records.schemas import ExportCreate, ExportPublic, LinkExpires, LinkSignature, export_public
from services.records.settings import RecordsSettings

router = APIRouter(prefix="/api/v1/records/matters/{matter_id}/exports", tags=["records"])

ZIP = {"application/zip": {"schema": {"type": "string", "contentMediaType": "application/zip"}}}
OFFICER: dict[int | str, dict[str, Any]] = {403: {"description": "`not-an-officer`"}}


def _public(view: exports.View, settings: RecordsSettings) -> ExportPublic:
    return export_public(
        view.export, view.downloads, view.downloads_total, exports.link(settings, view.export)
    )


@router.post(
    "",
    status_code=202,
    summary="Ask for an export of what a matter names",
    responses={
        **OFFICER,
        202: {"description": "Queued; `Location` names it. Read it until `status` is `ready`."},
        404: {"description": "`not-found`: no such matter"},
        409: {"description": "`matter-closed`; `export-running`: one of this matter is queued or running"},
        422: {
            "description": "`empty-scope` (no custodians nor groups), `unbounded-scope` (a date missing), "
            "`unknown-custodian`, `validation`"
        },
        503: {"description": "`identity-unavailable`: try again (`Retry-After`)"},
    },
)
async def create_export(
    matter_id: uuid.UUID,
    body: ExportCreate,
    officer: CurrentOfficer,
    session: SessionDep,
    identity: IdentityDep,
    settings: SettingsDep,
    response: Response,
) -> ExportPublic:
    """The export is a snapshot of the records copy at this moment (`as_of`). Identity resolves
    each custodian to both personas and audits it; the request is in records' audit log."""
    export = await exports.request_matter_export(session, identity, officer, matter_id, body)
    response.headers["Location"] = f"/api/v1/records/matters/{matter_id}/exports/{export.id}"
    return _public(exports.View(export, [], 0), settings)


@router.get(
    "",
    summary="A matter's exports, newest first",
    responses={**OFFICER, 400: {"description": "`bad-cursor`"}, 404: {"description": "`not-found`"}},
)
async def list_exports(
    matter_id: uuid.UUID,
    request: Request,
    response: Response,
    officer: CurrentOfficer,
    session: SessionDep,
    settings: SettingsDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[ExportPublic]:
    scope = f"exports:{matter_id}"
    views = await exports.find_matter_exports(
        session, officer, matter_id, before=decode_id_cursor(scope, cursor), limit=limit
    )
    page = paginate(request, response, views, limit=limit, scope=scope, key=lambda v: [str(v.export.id)])
    return Page[ExportPublic](items=[_public(v, settings) for v in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{export_id}",
    summary="One export: its progress, what redaction replaced, its custody and, once ready, a download link",
    responses={**OFFICER, 404: {"description": "`not-found`"}},
)
async def get_export(
    matter_id: uuid.UUID,
    export_id: uuid.UUID,
    officer: CurrentOfficer,
    session: SessionDep,
    settings: SettingsDep,
) -> ExportPublic:
    """`download.url` is valid `link_minutes` (15 by default) and needs the records token too;
    read the export again for a fresh one."""
    return _public(await exports.read_matter_export(session, officer, matter_id, export_id), settings)


@router.get(
    "/{export_id}/package",
    summary="Download the package (a zip)",
    response_class=StreamingResponse,
    responses={
        **OFFICER,
        200: {"content": ZIP, "description": "The package; its download is recorded"},
        403: {"description": "`not-an-officer`; `bad-signature`: the link was not made for this export"},
        404: {"description": "`not-found`"},
        409: {"description": "`export-not-ready`"},
        410: {"description": "`link-expired`: read the export for a new link; `export-expired`: deleted"},
    },
)
async def download_package(
    matter_id: uuid.UUID,
    export_id: uuid.UUID,
    expires: LinkExpires,
    signature: LinkSignature,
    officer: CurrentOfficer,
    session: SessionDep,
    settings: SettingsDep,
) -> StreamingResponse:
    package = await exports.take_matter_package(
        session, settings, officer, matter_id, export_id, expires, signature
    )
    return StreamingResponse(
        package.chunks(),
        media_type="application/zip",
        headers={
            "Content-Length": str(package.size),
            "Content-Disposition": f'attachment; filename="{package.filename}"',
            "Cache-Control": "no-store",
        },
    )
