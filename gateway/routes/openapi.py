"""``GET /openapi.json``: the suite's one document, merged from the services' own
(``gateway.openapi``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.deps import OpenAPISourceDep

router = APIRouter()


@router.get("/openapi.json", include_in_schema=False)
async def openapi(source: OpenAPISourceDep) -> dict[str, Any]:
    return await source.document()
