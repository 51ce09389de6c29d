"""Moderation's app factory: ``uvicorn services.moderation.app:create_app --factory``."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from domain.contexts import PROBLEM_DESCRIPTIONS
from domain.principal import principal_from_claims
from kit.service import ServiceSpec, create_service_app
from services.moderation import expiry, retention
from services.moderation.deps import NoticesCheck
from services.moderation.events import handlers
from services.moderation.models import PersonaReplica, outbox_tables
from services.moderation.routes import routers
from services.moderation.settings import ModerationSettings

HERE = Path(__file__).parent


def create_app(
    settings: ModerationSettings | None = None, *, http_client: httpx.AsyncClient | None = None
) -> FastAPI:
    settings = settings or ModerationSettings()
    spec = ServiceSpec(
        name="moderation",
        title="Moderation",
        description="Reports, the review queue, moderation actions, notices and appeals.",
        routers=routers,
        outbox_tables=outbox_tables,
        migrations_dir=HERE,
        principal=principal_from_claims,
        problem_descriptions=PROBLEM_DESCRIPTIONS,
        event_handlers=handlers,
        # no cache: a suspension reaches the persona's very next request here (decision 0032)
        principal_check=NoticesCheck(PersonaReplica, ttl=0, wait=settings.unknown_persona_wait_seconds),
        workers=[expiry.worker],
        retention=retention.rules(settings),
    )
    return create_service_app(spec, settings, http_client=http_client)
