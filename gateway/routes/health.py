"""Liveness and readiness: live says the gateway answers, ready that every service behind it
says it is ready."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.deps import UpstreamsDep
from kit.errors import ServiceUnavailable

router = APIRouter(tags=["health"])


@router.get("/health/live", summary="Liveness probe")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", summary="Readiness: every upstream is ready")
async def ready(upstreams: UpstreamsDep) -> dict[str, Any]:
    report = await upstreams.readiness()
    if any(state != "ready" for state in report.values()):
        error = ServiceUnavailable(
            "Not every service is ready: {states}",
            params={"states": ", ".join(f"{k} {v}" for k, v in report.items())},
            retry_after=5,
        )
        error.extra["upstreams"] = report
        raise error
    return {"status": "ready", "upstreams": report}
