"""Signed links to a media's file and preview (decision 0036), for an ``<img>`` or a download
that cannot send a bearer token.

A link is ``/api/v1/media/<id>/<variant>?expires=<unix seconds>&signature=<hex>``, the
signature an HMAC-SHA256 over ``f"{id}:{variant}:{expires}"``. It names one media and one
variant, so a signature taken from one link opens nothing else, and it carries no persona:
whoever holds the link reads the file until it expires (``MEDIA_URL_SECONDS``). The key is
``MEDIA_URL_KEY`` or, when that is empty, derived from the internal token (an HMAC of it with a
fixed label): one secret fewer to deploy, and a link never reveals the token.

Expiry times are rounded up to the minute, so the links media hands out within a minute are
the same and a browser's cache keeps one copy of the image.

A link is checked before anything is looked up: a tampered link is 403 ``bad-signature``, an
expired one 403 ``link-expired``; a withdrawn, deleted or missing media is then 404 exactly as
for a bearer."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
import uuid
from typing import Literal

from kit.errors import Forbidden
from services.media.settings import MediaSettings

Variant = Literal["file", "preview"]

LABEL = b"media url signing"
ROUND_SECONDS = 60
_EXPIRES = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")


def signing_key(settings: MediaSettings) -> bytes:
    """``MEDIA_URL_KEY``, or a key derived from the internal token."""
    configured = settings.url_key.get_secret_value()
    if configured:
        return configured.encode()
    return hmac.new(settings.internal_token.get_secret_value().encode(), LABEL, hashlib.sha256).digest()


def signature(key: bytes, media_id: uuid.UUID, variant: Variant, expires: int) -> str:
    return hmac.new(key, f"{media_id}:{variant}:{expires}".encode(), hashlib.sha256).hexdigest()


def expiry(settings: MediaSettings, now: float | None = None) -> int:
    """When a link made now expires: ``url_seconds`` from now, rounded up to the minute (or to
    ``url_seconds`` when that is shorter)."""
    now = time.time() if now is None else now
    step = min(ROUND_SECONDS, settings.url_seconds)
    return int(math.ceil((now + settings.url_seconds) / step) * step)


def link(key: bytes, media_id: uuid.UUID, variant: Variant, expires: int) -> str:
    """The link's path and query, relative to the API's root (as the ``Link`` headers of
    lists are), so it stays right behind the gateway."""
    return (
        f"/api/v1/media/{media_id}/{variant}"
        f"?expires={expires}&signature={signature(key, media_id, variant, expires)}"
    )


def check(
    key: bytes,
    media_id: uuid.UUID,
    variant: Variant,
    expires: str | None,
    given: str | None,
    now: float | None = None,
) -> None:
    """Refuses (403) a link whose signature is not media's for this id, variant and expiry
    (also when a parameter is missing or malformed), then one that has expired. The signature
    is compared in constant time."""
    if expires is None or given is None or not _EXPIRES.match(expires) or not _SIGNATURE.match(given):
        raise Forbidden("The link is not valid.", slug="bad-signature")
    expected = signature(key, media_id, variant, int(expires))
    if not hmac.compare_digest(expected, given):
        raise Forbidden("The link is not valid.", slug="bad-signature")
    if int(expires) < (time.time() if now is None else now):
        raise Forbidden("The link has expired; ask for the media again for a new one.", slug="link-expired")
