"""The gateway's FastAPI dependencies: the objects ``create_app`` keeps on ``app.state``, as its
own routes (readiness, the OpenAPI document) take them. The proxy routes, which carry nearly
every request, are given theirs when they are built and solve no dependencies (decision 0013).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.openapi import OpenAPISource
from gateway.upstream import Upstreams


async def upstreams(request: Request) -> Upstreams:
    found: Upstreams = request.app.state.upstreams
    return found


async def openapi_source(request: Request) -> OpenAPISource:
    found: OpenAPISource = request.app.state.openapi
    return found


UpstreamsDep = Annotated[Upstreams, Depends(upstreams)]
OpenAPISourceDep = Annotated[OpenAPISource, Depends(openapi_source)]
