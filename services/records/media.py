"""The call records makes to media (decision 0036): the stored bytes of a media file, for an
export's package.

Media answers ``GET /internal/records/media/{id}/file`` behind the internal token with the file
as it stores it, withdrawn or not. The bytes are handed on a chunk at a time as they arrive, so
that a file is never held whole in memory. A file that cannot be had is ``Missing``, with a
reason the package's manifest lists: ``not-found`` (media answered 404: the file was destroyed,
or media never had it), ``unavailable`` (no answer, a timeout, any other status, or the answer
broke off), ``too-large`` (longer than ``export_media_max_bytes``, or than it said). Nothing
here fails an export: one file missing is a line in the manifest, not a failed package.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from services.records.settings import RecordsSettings

log = logging.getLogger("services.records.media")

CHUNK = 1 << 20

NOT_FOUND, UNAVAILABLE, TOO_LARGE = "not-found", "unavailable", "too-large"

Sink = Callable[[bytes], Awaitable[None]]
"""Takes the next chunk of a file's bytes."""


class Missing(Exception):
    """The file's bytes could not be had; ``reason`` is one of the codes above."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class MediaFiles:
    """Media's internal file route, through the app's HTTP client."""

    client: httpx.AsyncClient
    settings: RecordsSettings

    async def copy(self, media_id: uuid.UUID, sink: Sink) -> int:
        """Hands the file's bytes to ``sink`` as they arrive; returns how many there were.
        ``Missing`` when they cannot all be had (``sink`` may have had some: the caller throws
        them away)."""
        token = self.settings.internal_token.get_secret_value()
        url = f"{self.settings.media_url.rstrip('/')}/internal/records/media/{media_id}/file"
        limit = self.settings.export_media_max_bytes
        try:
            async with self.client.stream(
                "GET",
                url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.settings.call_timeout_seconds,
            ) as resp:
                if resp.status_code == 404:
                    raise Missing(NOT_FOUND)
                if resp.status_code != 200:
                    log.warning("media answered %d for a file", resp.status_code)
                    raise Missing(UNAVAILABLE)
                declared = resp.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    raise Missing(TOO_LARGE)
                size = 0
                async for chunk in resp.aiter_bytes(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise Missing(TOO_LARGE)
                    await sink(chunk)
                return size
        except httpx.HTTPError as exc:
            log.warning("media call failed: %s", type(exc).__name__)
            raise Missing(UNAVAILABLE) from exc
