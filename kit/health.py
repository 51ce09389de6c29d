"""Liveness and readiness probes: live says the process answers, ready that its database
answers and carries the schema this code expects."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from kit.db import Database
from kit.errors import ServiceUnavailable
from kit.migrations import current_revision, head_revision


def health_router(migrations_dir: Path | None) -> APIRouter:
    router = APIRouter(tags=["health"])
    expected = head_revision(migrations_dir) if migrations_dir is not None else None

    @router.get("/health/live", summary="Liveness probe")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/health/ready",
        summary="Readiness probe: the database answers and is migrated",
        responses={503: {"description": "Not ready"}},
    )
    async def ready(request: Request) -> dict[str, str]:
        database: Database = request.app.state.database
        try:
            async with database.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            raise ServiceUnavailable("The database does not answer.") from exc
        if expected is not None:
            current = await current_revision(database.engine)
            if current != expected:
                raise ServiceUnavailable(
                    "The database schema is at revision {current}, this code expects {expected}: "
                    "run the migrations.",
                    params={"current": current, "expected": expected},
                )
        return {"status": "ready"}

    return router
