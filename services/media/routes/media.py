"""Media's public routes: uploading (``POST /api/v1/media``), the uploader's list, one media,
its description, deleting it, and reading its file and preview."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from kit.pagination import Cursor, Limit, Page, decode_cursor, paginate
from services.media import library, links, serving, uploading
from services.media.deps import (
    CurrentPersona,
    DatabaseDep,
    FileAccess,
    HttpDep,
    OutboxDep,
    PreviewAccess,
    SessionDep,
    SettingsDep,
    SigningKeyDep,
    StorageDep,
    StreamedBodyRoute,
    upload_of,
)
from services.media.schemas import DESCRIPTION_LENGTH, MediaPublic, MediaUpdate, media_public
from services.media.settings import DEFAULT_ALLOWED

router = APIRouter(prefix="/api/v1/media", tags=["media"])

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "The file, one."},
                        "description": {
                            "type": "string",
                            "maxLength": DESCRIPTION_LENGTH,
                            "description": "Alternative text (1 to 1500 characters).",
                        },
                    },
                    "additionalProperties": False,
                }
            }
        },
    },
    "security": [{"bearer": []}],
}


async def upload_media(request: Request) -> Response:
    """The body is read here, as it streams (``StreamedBodyRoute``)."""
    given = await upload_of(request)
    media = await uploading.upload(
        given.database,
        given.storage,
        given.settings,
        given.caller,
        given.content_type,
        given.content_length,
        given.chunks,
    )
    key = links.signing_key(given.settings)
    public = media_public(media, key=key, expires=links.expiry(given.settings), uploader=True)
    return JSONResponse(
        public.model_dump(mode="json"), status_code=202, headers={"Location": f"/api/v1/media/{media.id}"}
    )


router.add_api_route(
    "",
    upload_media,
    methods=["POST"],
    status_code=202,
    response_model=MediaPublic,
    summary="Upload a file",
    description="Multipart: one `file` part and an optional `description`. Answers at once, with the "
    "media `processing`; it becomes `ready` (or `rejected`, with a `reason`) once processed: ask "
    "`GET /api/v1/media/{id}` again. The type is decided from the bytes, never from the name or the "
    "declared type; images lose their metadata (EXIF, GPS).",
    responses={
        202: {"headers": {"Location": {"schema": {"type": "string"}, "description": "The media's address."}}},
        400: {"description": "A malformed multipart body, or an upload interrupted"},
        413: {"description": "The file exceeds the file limit or what is left of the quota"},
        415: {"description": "Not multipart/form-data"},
        422: {"description": "No file, an empty file, two files, an unknown field or an invalid description"},
    },
    openapi_extra=UPLOAD_BODY,
    route_class_override=StreamedBodyRoute,
)


@router.get("", summary="Your uploads, newest first")
async def list_media(
    request: Request,
    response: Response,
    session: SessionDep,
    caller: CurrentPersona,
    settings: SettingsDep,
    key: SigningKeyDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[MediaPublic]:
    after = library.cursor_key(decode_cursor("media", cursor, arity=2))
    rows = await library.list_own(session, caller, after, limit)
    page = paginate(request, response, rows, limit=limit, scope="media", key=library.cursor_of)
    expires = links.expiry(settings)
    return Page[MediaPublic](
        items=[media_public(m, key=key, expires=expires, uploader=True) for m in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/{media_id}", summary="A media")
async def get_media(
    media_id: uuid.UUID,
    session: SessionDep,
    caller: CurrentPersona,
    client: HttpDep,
    settings: SettingsDep,
    key: SigningKeyDep,
) -> MediaPublic:
    """Its uploader's, or one attached to something the caller sees (a post, a comment, a
    persona, a group): else 404, as for a missing id."""
    media = await library.readable(session, client, settings, media_id, caller)
    return media_public(
        media, key=key, expires=links.expiry(settings), uploader=media.uploader_id == caller.persona_id
    )


@router.patch(
    "/{media_id}",
    summary="Change a media's description",
    responses={404: {"description": "Not your upload"}},
)
async def update_media(
    media_id: uuid.UUID,
    body: MediaUpdate,
    session: SessionDep,
    caller: CurrentPersona,
    outbox: OutboxDep,
    settings: SettingsDep,
    key: SigningKeyDep,
) -> MediaPublic:
    """The description only; the uploader's alone."""
    media = await library.describe(session, outbox, media_id, caller, body)
    return media_public(media, key=key, expires=links.expiry(settings), uploader=True)


@router.delete(
    "/{media_id}",
    status_code=204,
    summary="Delete an upload",
    responses={404: {"description": "Not your upload"}, 409: {"description": "Attached (media-attached)"}},
)
async def delete_media(
    media_id: uuid.UUID,
    session: SessionDep,
    caller: CurrentPersona,
    database: DatabaseDep,
    storage: StorageDep,
) -> Response:
    """An upload not attached to anything; the uploader's alone."""
    incoming = await library.remove(session, media_id, caller)
    if incoming is not None:
        await uploading.forget_key(database, storage, incoming)
    return Response(status_code=204)


# The media's own `content_type`: one of the default allow-list's (MEDIA_ALLOWED_TYPES), a
# preview's WebP, or a type the operator added, sent as itself.
BYTES = {
    content_type: {"schema": {"type": "string", "format": "binary"}}
    for content_type in (*DEFAULT_ALLOWED, "application/octet-stream")
}
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": BYTES, "description": "The bytes, of the media's content type"},
    206: {"content": BYTES, "description": "One range of the bytes (Range)"},
    304: {"description": "Unchanged (If-None-Match)"},
    403: {"description": "A signed link that is tampered with (bad-signature) or expired (link-expired)"},
    404: {"description": "Missing, not visible to the caller, withdrawn or not ready"},
    409: {"description": "Your upload is still being processed (media-not-ready)"},
    416: {"description": "A range outside the file"},
}

RangeHeader = Annotated[str | None, Header(alias="range", max_length=200)]
IfNoneMatch = Annotated[str | None, Header(max_length=1000)]
IfRange = Annotated[str | None, Header(max_length=200)]


def _streamed(answer: serving.Answer) -> Response:
    if answer.body is None:
        return Response(status_code=answer.status, headers=answer.headers)
    return StreamingResponse(
        answer.body,
        status_code=answer.status,
        headers={**answer.headers, "Content-Length": str(answer.length)},
    )


@router.get(
    "/{media_id}/file",
    summary="A media's file",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def get_file(
    media_id: uuid.UUID,
    reader: FileAccess,
    session: SessionDep,
    client: HttpDep,
    settings: SettingsDep,
    storage: StorageDep,
    range_header: RangeHeader = None,
    if_none_match: IfNoneMatch = None,
    if_range: IfRange = None,
) -> Response:
    """With a bearer token (its uploader, or a reader of what it is attached to) or with the
    signed link of ``url`` (``expires`` and ``signature``), checked before anything else."""
    found = await serving.find(session, client, settings, media_id, "file", reader.persona)
    await session.close()  # nothing more to read while the bytes stream
    return _streamed(await serving.answer(storage, found, range_header, if_none_match, if_range))


@router.get(
    "/{media_id}/preview",
    summary="An image's preview",
    response_class=Response,
    responses=FILE_RESPONSES,
)
async def get_preview(
    media_id: uuid.UUID,
    reader: PreviewAccess,
    session: SessionDep,
    client: HttpDep,
    settings: SettingsDep,
    storage: StorageDep,
    range_header: RangeHeader = None,
    if_none_match: IfNoneMatch = None,
    if_range: IfRange = None,
) -> Response:
    """As the file; at most 640 px a side."""
    found = await serving.find(session, client, settings, media_id, "preview", reader.persona)
    await session.close()
    return _streamed(await serving.answer(storage, found, range_header, if_none_match, if_range))
