"""Who may read a media besides its uploader: whoever its owner says sees the owner (decision
0036). Media keeps no visibility rule of its own; it asks the service that owns what the media
is attached to, with the internal token, the same way moderation asks at filing (decision
0032):

| owner | asked |
| --- | --- |
| post | feed ``GET /internal/media/posts/{id}?reader=<persona>`` |
| comment | feed ``GET /internal/media/comments/{id}?reader=<persona>`` |
| avatar | identity ``GET /internal/media/personas/{id}?reader=<persona>`` |
| group image | groups ``GET /internal/media/groups/{id}?reader=<persona>`` |

Only 204 means seen. Anything else (404, another status, a timeout, a refused connection) is
"not seen", which the reader gets as the 404 of a missing id: a file never shows more than its
owner does, and an owner that cannot answer hides its files rather than exposing them."""

from __future__ import annotations

import logging
import uuid

import httpx

from services.media.models import Media
from services.media.settings import MediaSettings

log = logging.getLogger(__name__)

OWNER_PATHS = {
    "post": ("feed", "/internal/media/posts/{id}"),
    "comment": ("feed", "/internal/media/comments/{id}"),
    "avatar": ("identity", "/internal/media/personas/{id}"),
    "group_image": ("groups", "/internal/media/groups/{id}"),
}


def _base(settings: MediaSettings, service: str) -> str:
    urls = {"feed": settings.feed_url, "identity": settings.identity_url, "groups": settings.groups_url}
    return urls[service].rstrip("/")


async def owner_shows(
    client: httpx.AsyncClient,
    settings: MediaSettings,
    owner_kind: str,
    owner_id: uuid.UUID,
    reader: uuid.UUID,
) -> bool:
    """Whether the owner service says ``reader`` sees the owner."""
    target = OWNER_PATHS.get(owner_kind)
    if target is None:
        return False
    service, path = target
    url = _base(settings, service) + path.format(id=owner_id)
    try:
        response = await client.get(
            url,
            params={"reader": str(reader)},
            headers={"Authorization": f"Bearer {settings.internal_token.get_secret_value()}"},
            timeout=settings.lookup_timeout_seconds,
        )
    except httpx.HTTPError as exc:
        log.warning("%s did not answer media's visibility call: %s", service, type(exc).__name__)
        return False
    if response.status_code not in (204, 404):
        log.warning("%s answered media's visibility call with %d", service, response.status_code)
    return response.status_code == 204


async def reader_sees(
    client: httpx.AsyncClient, settings: MediaSettings, media: Media, reader: uuid.UUID, context: str | None
) -> bool:
    """Whether ``reader`` (a persona of ``context``) may read ``media``: the uploader always;
    anyone else only for a ready media attached to an owner that is not withdrawn, of the
    reader's own context (nothing crosses the boundary, whatever an owner answers), and that
    the owner says the reader sees."""
    if media.uploader_id == reader:
        return True
    if (
        media.status != "ready"
        or media.owner_kind is None
        or media.owner_id is None
        or media.withdrawn_at is not None
        or media.post_withdrawn_at is not None
        or media.context != context
    ):
        return False
    return await owner_shows(client, settings, media.owner_kind, media.owner_id, reader)
