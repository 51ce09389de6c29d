"""Files on posts and comments (decision 0036): media keeps the files and serves them, feed
keeps which files a post or a comment carries, and says who sees that post or comment.

**Attaching.** A new post (up to four files) or comment (one) names its uploads by id
(``media_ids``). Its flow checks what it can first (the group, the post commented on, the
parent comment), then asks media to attach the uploads to the new item's id, made before the
call (``Attaching.attach``: one internal call, ``POST /internal/media/attachments``), and only
then writes. What media answers, each a ``schemas.MediaAttachment``, is stored on the row
(``media``) and shown wherever the item is: its own answer, every timeline, PostgreSQL's home
page, search, the stream. Media refusing one (not the persona's own, not ready, attached
elsewhere) is a 422 ``media-not-attachable`` naming it; media not answering within
``media_timeout_seconds`` is a 503 with ``Retry-After``; either way nothing is written.

**Undoing an attachment.** A create runs inside ``Attaching`` (``async with``, in the route,
around the idempotent create): when anything fails after media attached (a refusal found later
in the flow, a database error, the commit), it asks media to release them with
``"delete": false``, so that they are the uploader's unattached uploads again, to be posted
anew. Best effort: a release that fails is logged, and the upload stays attached to an item
that does not exist, which media then serves to its uploader alone (feed answers 404 for
everyone else). A call that timed out may have attached all the same, so it is released too.
An idempotent replay answers before the flow runs, so it attaches nothing again.

**Who sees a file** is who sees its post or comment: media asks (``post_seen``,
``comment_seen``; ``routes.internal``), and feed answers by its one rule (decision 0028), the
same as ``GET /api/v1/posts/{id}`` would for that reader: deleted, hidden or held (but for its
author), in a group the reader cannot read, of the other context: a 404, as for a missing id.

**A description edited** at media comes back as ``internal.media.updated`` (``apply_update``),
which replaces that file's entry in its owner's list. A post's or comment's removal empties
its list with the rest of its content (``posting``, ``commenting``, ``events``); one that
moderation removes keeps it, for a restore, as it keeps its text.
"""

from __future__ import annotations

import logging
import uuid
from types import TracebackType
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from domain.media import MediaAttachment
from kit.errors import ServiceUnavailable, Unprocessable
from services.feed.access import as_reader, visible_post
from services.feed.commenting import find
from services.feed.models import Comment, Post
from services.feed.schemas import stored_media
from services.feed.settings import FeedSettings

log = logging.getLogger(__name__)

OwnerKind = Literal["post", "comment"]
ATTACH_PATH = "/internal/media/attachments"
RELEASE_PATH = "/internal/media/attachments/release"
_NOBODY = uuid.UUID(int=0)


def media_unavailable() -> ServiceUnavailable:
    error = ServiceUnavailable("The media service did not answer; try again.", retry_after=1)
    error.slug = "media-unavailable"
    return error


def not_attachable(media_ids: list[uuid.UUID], refused: uuid.UUID | None) -> Unprocessable:
    """The 422 for a file media would not attach, naming it, and where it is in ``media_ids``
    (when media said which: it names the first it refused)."""
    detail = (
        "These media cannot be attached: only your own uploads, once ready, and not attached to "
        "anything else."
    )
    location, params = "body.media_ids", dict[str, object]()
    if refused is not None and refused in media_ids:
        detail = (
            "Media {media_id} cannot be attached: only your own uploads, once ready, and not attached to "
            "anything else."
        )
        location, params = f"body.media_ids[{media_ids.index(refused)}]", {"media_id": refused}
    return Unprocessable(
        detail,
        params=params,
        slug="media-not-attachable",
        errors=[{"location": location, "message": "cannot be attached", "code": "media-not-attachable"}],
    )


class _Attached(BaseModel):
    """Media's answer to an attach: the attachments, in the order asked."""

    model_config = ConfigDict(extra="ignore")

    media: list[MediaAttachment]


def _refused(resp: httpx.Response, media_ids: list[uuid.UUID]) -> uuid.UUID | None:
    """Which of ``media_ids`` media's 422 names (its problem's ``media_id``)."""
    try:
        problem = resp.json()
    except ValueError:
        return None
    named = problem.get("media_id") if isinstance(problem, dict) else None
    return next((media_id for media_id in media_ids if str(media_id) == named), None)


class MediaCalls:
    """Feed's calls to media, through the app's HTTP client, behind the internal token."""

    def __init__(self, client: httpx.AsyncClient, settings: FeedSettings) -> None:
        self.client = client
        self.settings = settings

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        token = self.settings.internal_token.get_secret_value()
        return await self.client.post(
            self.settings.media_url.rstrip("/") + path,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=self.settings.media_timeout_seconds,
        )

    async def attach(self, body: dict[str, Any], media_ids: list[uuid.UUID]) -> list[MediaAttachment]:
        """Media's attachments for ``media_ids``, in their order; 422 when it refuses one, 503
        when it does not answer (``httpx.HTTPError`` is left to the caller, who may have to
        release what a call that timed out attached) or answers anything else."""
        resp = await self._post(ATTACH_PATH, body)
        if resp.status_code == 422:
            raise not_attachable(media_ids, _refused(resp, media_ids))
        if resp.status_code != 200:
            log.warning("media answered an attach with %d", resp.status_code)
            raise media_unavailable()
        try:
            attached = _Attached.model_validate_json(resp.content).media
        except ValidationError as exc:
            log.warning("media answered an attach with an unexpected body")
            raise media_unavailable() from exc
        if [item.id for item in attached] != media_ids:
            log.warning("media answered an attach with other media than asked")
            raise media_unavailable()
        return attached

    async def release(self, owner_kind: OwnerKind, owner_id: uuid.UUID) -> None:
        """Makes what is attached to the owner the uploader's unattached uploads again; best
        effort: a failure is logged."""
        body = {"owner_kind": owner_kind, "owner_id": str(owner_id), "keep": [], "delete": False}
        try:
            resp = await self._post(RELEASE_PATH, body)
        except httpx.HTTPError as exc:
            log.warning("media release of a %s failed: %s", owner_kind, type(exc).__name__)
            return
        if resp.status_code >= 300:
            log.warning("media answered a release of a %s with %d", owner_kind, resp.status_code)


class Attaching:
    """One create's attachments, released when the create fails (module docstring). Use as
    ``async with attaching: ...`` around the whole create, its commit included."""

    def __init__(self, media: MediaCalls) -> None:
        self.media = media
        self.owners: list[tuple[OwnerKind, uuid.UUID]] = []

    async def attach(
        self,
        owner_kind: OwnerKind,
        owner_id: uuid.UUID,
        persona_id: uuid.UUID,
        media_ids: list[uuid.UUID],
        *,
        post_id: uuid.UUID | None = None,
        group_id: uuid.UUID | None = None,
    ) -> list[dict[str, Any]]:
        """The attachments of ``media_ids`` to the new ``owner_id``, as its row keeps them
        (``schemas.stored_media``); none without a call when there are none."""
        if not media_ids:
            return []
        body: dict[str, Any] = {
            "owner_kind": owner_kind,
            "owner_id": str(owner_id),
            "persona_id": str(persona_id),
            "media_ids": [str(media_id) for media_id in media_ids],
        }
        if post_id is not None:
            body["post_id"] = str(post_id)
        if group_id is not None:
            body["group_id"] = str(group_id)
        owner = (owner_kind, owner_id)
        self.owners.append(owner)  # from before the call: one that times out may attach all the same
        try:
            attached = await self.media.attach(body, media_ids)
        except httpx.HTTPError as exc:
            log.warning("media attach failed: %s", type(exc).__name__)
            raise media_unavailable() from exc
        except Exception:
            self.owners.remove(owner)  # media answered, and attached nothing
            raise
        return stored_media(attached)

    async def __aenter__(self) -> Attaching:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            return
        for owner_kind, owner_id in self.owners:
            await self.media.release(owner_kind, owner_id)


async def post_seen(session: AsyncSession, reader_id: uuid.UUID, post_id: uuid.UUID) -> None:
    """Nothing when persona ``reader_id`` sees the post (as ``GET /api/v1/posts/{id}`` would
    show it to them), else 404, the same for a missing post."""
    await visible_post(session, await as_reader(session, reader_id), post_id)


async def comment_seen(session: AsyncSession, reader_id: uuid.UUID, comment_id: uuid.UUID) -> None:
    """Nothing when persona ``reader_id`` sees the comment (its post first, as
    ``commenting.find``), else 404, the same for a missing comment."""
    reader = await as_reader(session, reader_id)
    post_id = await session.scalar(select(Comment.post_id).where(col(Comment.id) == comment_id))
    await find(session, reader, post_id or _NOBODY, comment_id)


async def apply_update(
    session: AsyncSession, owner_kind: str, owner_id: uuid.UUID, attachment: MediaAttachment
) -> None:
    """``internal.media.updated``: the file's entry in its post's or comment's list replaced
    by media's new description of it. An owner feed does not know, or that no longer lists the
    file (deleted since), is left alone."""
    row: Post | Comment | None
    if owner_kind == "post":
        row = await session.get(Post, owner_id, with_for_update=True)
    elif owner_kind == "comment":
        row = await session.get(Comment, owner_id, with_for_update=True)
    else:
        return  # an avatar or a group's image: identity's and groups'
    if row is None:
        return
    media_id = str(attachment.id)
    if not any(item.get("id") == media_id for item in row.media or []):
        return
    (replacement,) = stored_media([attachment])
    row.media = [replacement if item.get("id") == media_id else item for item in row.media]
