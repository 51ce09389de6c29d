"""What the services that attach media share (decision 0036): the attachment as media
describes it (``MediaAttachment``, kept by the owner and shown with it: a post's or comment's
``media``, a persona's ``avatar``, a group's ``image``), and the calls an owner of one file
(identity's avatars, groups' images) makes to media's internal routes with the internal token.

A refusal by media is a 422 ``media-not-attachable`` with the same words whatever media's
reason, so an answer never tells whether someone else's upload exists; media not answering, or
answering anything unexpected, is a 503 ``media-unavailable`` with ``Retry-After``, and nothing
is written.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kit.errors import ServiceUnavailable, Unprocessable

log = logging.getLogger("domain.media")


MediaType = Literal["image", "document", "other"]


class MediaAttachment(BaseModel):
    """An uploaded file attached by its id (decision 0036), as media described it: its bytes
    are at `/api/v1/media/{id}/file` (and `/preview` when `preview` is true), served to exactly
    those who see what it is attached to."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    media_type: MediaType = Field(description="`image`, `document` or `other`, decided from the bytes.")
    content_type: str = Field(max_length=255)
    filename: str = Field(max_length=1000)
    description: str | None = Field(
        default=None, max_length=5000, description="The uploader's description (alt text)."
    )
    size: int = Field(ge=0, description="Bytes.")
    width: int | None = Field(default=None, description="Pixels, for an image.")
    height: int | None = Field(default=None, description="Pixels, for an image.")
    preview: bool = Field(description="Whether media serves a preview (`GET /api/v1/media/{id}/preview`).")


class _Attached(BaseModel):
    model_config = ConfigDict(extra="ignore")

    media: list[MediaAttachment] = Field(min_length=1, max_length=1)


def media_unavailable() -> ServiceUnavailable:
    error = ServiceUnavailable("Media did not answer; try again.", retry_after=1)
    error.slug = "media-unavailable"
    return error


def not_attachable(media_id: uuid.UUID) -> Unprocessable:
    return Unprocessable(
        "Media {media_id} cannot be attached: it must be one of the caller's own uploads, ready, "
        "and attached to nothing else.",
        params={"media_id": media_id},
        slug="media-not-attachable",
        errors=[{"location": "body.media_id", "message": str(media_id), "code": "media-not-attachable"}],
    )


@dataclass(frozen=True, slots=True)
class Media:
    """An owner's calls to media about one file (an avatar, a group's image), through the app's
    HTTP client."""

    client: httpx.AsyncClient
    url: str
    token: str
    timeout: float

    async def attach(
        self, owner_kind: str, owner_id: uuid.UUID, persona_id: uuid.UUID, media_id: uuid.UUID
    ) -> MediaAttachment:
        """Attaches ``persona_id``'s upload ``media_id`` to the owner; attaching it again to the
        same owner changes nothing (media's call is idempotent)."""
        body = {
            "owner_kind": owner_kind,
            "owner_id": str(owner_id),
            "persona_id": str(persona_id),
            "media_ids": [str(media_id)],
        }
        try:
            resp = await self._post("/internal/media/attachments", body)
        except httpx.HTTPError as exc:
            log.warning("media attach failed: %s", type(exc).__name__)
            raise media_unavailable() from exc
        if resp.status_code == 422:
            raise not_attachable(media_id)
        if resp.status_code != 200:
            log.warning("media answered an attach with %d", resp.status_code)
            raise media_unavailable()
        try:
            attached = _Attached.model_validate_json(resp.content).media[0]
        except ValidationError as exc:
            log.warning("media answered an attach with an unexpected body")
            raise media_unavailable() from exc
        if attached.id != media_id:
            log.warning("media answered an attach with another media")
            raise media_unavailable()
        return attached

    async def release(
        self, owner_kind: str, owner_id: uuid.UUID, *, keep: list[uuid.UUID], delete: bool
    ) -> bool:
        """Every media attached to the owner but those in ``keep`` is deleted (``delete``) or
        made an unattached upload of its uploader again. Returns whether media did it; a
        failure is logged, never raised: the callers that may go on without it do."""
        body = {
            "owner_kind": owner_kind,
            "owner_id": str(owner_id),
            "keep": [str(k) for k in keep],
            "delete": delete,
        }
        try:
            resp = await self._post("/internal/media/attachments/release", body)
        except httpx.HTTPError as exc:
            log.warning("media release failed: %s", type(exc).__name__)
            return False
        if resp.status_code not in (200, 204):
            log.warning("media answered a release with %d", resp.status_code)
            return False
        return True

    async def replace_image(
        self,
        owner_kind: str,
        owner_id: uuid.UUID,
        persona_id: uuid.UUID,
        media_id: uuid.UUID,
        *,
        shown: uuid.UUID | None,
        what: str,
        write: Callable[[MediaAttachment], Awaitable[None]],
    ) -> MediaAttachment:
        """Makes ``persona_id``'s upload ``media_id`` the owner's one image (an avatar, a
        group's image) in place of ``shown``: attaches it, lets ``write`` store it and commit,
        then deletes the file it replaced. When the upload is no image (422
        ``media-not-image``, naming ``what``) or ``write`` fails, the upload goes back to its
        uploader and the image shown stays attached. ``write`` must leave the owner as it was
        when it raises (it rolls back)."""
        attachment = await self.attach(owner_kind, owner_id, persona_id, media_id)
        try:
            if attachment.media_type != "image":
                raise Unprocessable(
                    "{what} must be an image.",
                    params={"what": what},
                    slug="media-not-image",
                    errors=[
                        {"location": "body.media_id", "message": str(media_id), "code": "media-not-image"}
                    ],
                )
            await write(attachment)
        except Exception:
            await self.release(owner_kind, owner_id, keep=[shown] if shown else [], delete=False)
            raise
        if shown != attachment.id:
            await self.release(owner_kind, owner_id, keep=[attachment.id], delete=True)
        return attachment

    async def _post(self, path: str, body: Mapping[str, object]) -> httpx.Response:
        return await self.client.post(
            self.url.rstrip("/") + path,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=self.timeout,
        )
