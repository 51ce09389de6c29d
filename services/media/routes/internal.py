"""Media's internal routes, for the other services of the deployment and never published
(decision 0036), each behind the internal token: the owners attach and release media (feed,
identity, groups), and records reads a media's stored file for its exports."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from services.media import attachments, serving
from services.media.deps import OutboxDep, ServiceToken, SessionDep, StorageDep
from services.media.schemas import Attached, AttachRequest, Released, ReleaseRequest, media_attachment

router = APIRouter(prefix="/internal/media", include_in_schema=False, dependencies=[ServiceToken])


@router.post("/attachments", summary="Attach media to their owner")
async def attach(body: AttachRequest, session: SessionDep, outbox: OutboxDep) -> Attached:
    """Each media must be the persona's own, ready, and unattached or attached to this owner
    already; else 422 ``media-not-attachable`` naming the first that is not (``media_id``), and
    none is attached. The media in the order asked."""
    attached = await attachments.attach(session, outbox, body)
    return Attached(media=[media_attachment(m) for m in attached])


@router.post("/attachments/release", summary="Let go of an owner's media")
async def release(body: ReleaseRequest, session: SessionDep, outbox: OutboxDep) -> Released:
    """Every media of the owner but those in ``keep``: deleted, or unattached again with
    ``"delete": false``."""
    return Released(released=await attachments.release(session, outbox, body))


records_router = APIRouter(prefix="/internal/records", include_in_schema=False, dependencies=[ServiceToken])


@records_router.get("/media/{media_id}/file", summary="A media's stored file, for records")
async def records_file(media_id: uuid.UUID, session: SessionDep, storage: StorageDep) -> Response:
    """The stored bytes, withdrawn or not; 404 for a media that is missing or has none."""
    answer = await serving.records_copy(session, storage, media_id)
    await session.close()
    assert answer.body is not None
    return StreamingResponse(
        answer.body, status_code=200, headers={**answer.headers, "Content-Length": str(answer.length)}
    )
