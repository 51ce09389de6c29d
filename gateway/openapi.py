"""One OpenAPI document for the whole suite, merged from the services' own documents."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

log = logging.getLogger("gateway.openapi")

INTERNAL_PREFIXES = ("/health/", "/internal/")


async def _fetch(client: httpx.AsyncClient, url: str) -> dict[str, Any] | None:
    try:
        resp = await client.get(url + "/openapi.json", timeout=5)
        resp.raise_for_status()
        document: dict[str, Any] = resp.json()
        return document
    except (httpx.HTTPError, ValueError):
        log.warning("could not fetch the OpenAPI document of %s", url)
        return None


async def merged_openapi(client: httpx.AsyncClient, services: dict[str, str]) -> dict[str, Any]:
    documents = await asyncio.gather(*(_fetch(client, url) for url in services.values()))
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "govsocial API",
            "version": "0.1.0",
            "description": "The intranet social API suite: identity, feed and groups behind one gateway.",
        },
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {}},
    }
    for name, document in zip(services, documents, strict=True):
        if document is None:
            continue
        for path, item in document.get("paths", {}).items():
            if not path.startswith(INTERNAL_PREFIXES):
                merged["paths"][path] = item
        components = document.get("components", {})
        for kind in ("schemas", "securitySchemes"):
            for key, value in components.get(kind, {}).items():
                existing = merged["components"][kind].get(key)
                if existing is not None and existing != value:
                    log.warning("component %s/%s of %s differs from another service's", kind, key, name)
                merged["components"][kind].setdefault(key, value)
    return merged
