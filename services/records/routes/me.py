"""Records routes: a persona's own export, the right of access (decision 0033, "Exports").

Any active persona asks for its own: from a professional token, both of its owner's personas;
from a personal one, that persona alone. Only the owner reads it (another persona gets 404).
Not in records' audit log (it is nobody's matter), but its downloads are in its custody."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from services.records import exports
from services.records.deps import CurrentPersona, IdentityDep, SessionDep, SettingsDep
from services.records.schemas import LinkExpires, LinkSignature, MyExportPublic, my_export_public

router = APIRouter(prefix="/api/v1/me", tags=["me"])

ZIP = {"application/zip": {"schema": {"type": "string", "contentMediaType": "application/zip"}}}


@router.post(
    "/export",
    status_code=202,
    summary="Ask for an export of your own data",
    responses={
        202: {"description": "Queued; `Location` names it. Read it until `status` is `ready`."},
        403: {"description": "A client's token"},
        409: {"description": "`export-running`: one of yours is queued or running"},
        503: {"description": "`identity-unavailable`: try again (`Retry-After`)"},
    },
)
async def create_own_export(
    caller: CurrentPersona,
    session: SessionDep,
    identity: IdentityDep,
    settings: SettingsDep,
    response: Response,
) -> MyExportPublic:
    """Your posts with every version, comments, reactions, memberships, notifications and
    profile: nothing of other people, whose ids are replaced by pseudonyms and whose handles
    are masked."""
    export = await exports.request_own_export(session, identity, caller)
    response.headers["Location"] = f"/api/v1/me/exports/{export.id}"
    return my_export_public(export, [], exports.link(settings, export))


@router.get(
    "/exports/{export_id}",
    summary="One of your exports: its progress and, once ready, a download link",
    responses={404: {"description": "`not-found`: no such export of yours"}},
)
async def get_own_export(
    export_id: uuid.UUID, caller: CurrentPersona, session: SessionDep, settings: SettingsDep
) -> MyExportPublic:
    view = await exports.read_own_export(session, caller, export_id)
    return my_export_public(view.export, view.downloads, exports.link(settings, view.export))


@router.get(
    "/exports/{export_id}/package",
    summary="Download your export (a zip)",
    response_class=StreamingResponse,
    responses={
        200: {"content": ZIP, "description": "The package"},
        403: {"description": "`bad-signature`"},
        404: {"description": "`not-found`"},
        409: {"description": "`export-not-ready`"},
        410: {"description": "`link-expired`: read the export for a new link; `export-expired`: deleted"},
    },
)
async def download_own_package(
    export_id: uuid.UUID,
    expires: LinkExpires,
    signature: LinkSignature,
    caller: CurrentPersona,
    session: SessionDep,
    settings: SettingsDep,
) -> StreamingResponse:
    package = await exports.take_own_package(session, settings, caller, export_id, expires, signature)
    return StreamingResponse(
        package.chunks(),
        media_type="application/zip",
        headers={
            "Content-Length": str(package.size),
            "Content-Disposition": f'attachment; filename="{package.filename}"',
            "Cache-Control": "no-store",
        },
    )
