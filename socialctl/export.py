"""A persona's own data, the right of access: asked of the records service
(``POST /api/v1/me/export``), waited for, and downloaded as the package it writes (a zip of
JSON Lines and CSV files with a manifest of their SHA-256 digests).

The export is made on the server, from the records copy: every version of the persona's posts,
its comments, reactions, memberships, notifications and profile, and nothing of other people.
A professional sign-in exports both of the owner's personas; a personal one that persona alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from socialctl.api import Api, ApiError

EXPORT = "/api/v1/me/export"
EXPORTS = "/api/v1/me/exports"
CHUNK = 1 << 16


@dataclass(frozen=True)
class Downloaded:
    export: dict[str, Any]
    path: Path
    size: int
    sha256: str


async def wait_ready(
    api: Api,
    export: dict[str, Any],
    *,
    within: float,
    poll: float,
    step: Callable[[dict[str, Any]], None] = lambda export: None,
) -> dict[str, Any]:
    """Reads the export every ``poll`` seconds until it is ready; ApiError when it failed, was
    deleted, or is not ready after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        step(export)
        status = export.get("status")
        if status == "ready":
            return export
        if status in ("failed", "expired"):
            raise ApiError(
                "Export failed", f"The export {export['id']} could not be made; ask for another one."
            )
        if time.monotonic() >= deadline:
            raise ApiError(
                "Export not ready",
                f"The export {export['id']} was not ready after {within:g} s "
                f"({export.get('percent', 0)}% done).",
            )
        await asyncio.sleep(max(0.0, min(poll, deadline - time.monotonic())))
        export = await api.call("GET", f"{EXPORTS}/{export['id']}")


async def save(api: Api, export: dict[str, Any], output: Path) -> Downloaded:
    """Streams the package to ``output`` (mode 0600), through a temporary file renamed once the
    whole package is there and its SHA-256 is the one the export states."""
    link = export.get("download") or {}
    url = link.get("url")
    if not url:
        raise ApiError("Export not ready", f"The export {export['id']} has no download link.")
    part = output.with_name(output.name + ".part")
    digest = hashlib.sha256()
    size = 0
    for renewed in (False, True):
        token = api.config.access_token
        async with api.client.stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as response:
            if response.status_code == 401 and not renewed:
                await api.renew(token)
                continue
            if response.is_error:
                await response.aread()
                raise ApiError.from_response(response)
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with os.fdopen(fd, "wb") as handle:
                    async for chunk in response.aiter_bytes(CHUNK):
                        handle.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                    handle.flush()
                    os.fsync(handle.fileno())
            except BaseException:
                part.unlink(missing_ok=True)
                raise
        break
    if export.get("sha256") and digest.hexdigest() != export["sha256"]:
        part.unlink(missing_ok=True)
        raise ApiError(
            "Download corrupted", "The package's SHA-256 is not the one the export states; try again."
        )
    os.replace(part, output)
    os.chmod(output, 0o600)
    return Downloaded(export, output, size, digest.hexdigest())


async def export(
    api: Api,
    output: Path,
    *,
    within: float = 600.0,
    poll: float = 2.0,
    step: Callable[[dict[str, Any]], None] = lambda export: None,
) -> Downloaded:
    """Asks for the signed-in persona's export, waits for it and downloads it to ``output``."""
    created: dict[str, Any] = await api.call("POST", EXPORT)
    ready = await wait_ready(api, created, within=within, poll=poll, step=step)
    return await save(api, ready, output)
