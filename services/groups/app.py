"""Groups' app factory: ``uvicorn services.groups.app:create_app --factory``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI

from domain.contexts import PROBLEM_DESCRIPTIONS
from domain.principal import PersonaCheck, principal_from_claims
from kit.service import ServiceSpec, create_service_app
from services.groups import health, idempotency
from services.groups.events import handlers
from services.groups.models import PersonaReplica, outbox_tables
from services.groups.routes import routers
from services.groups.settings import GroupsSettings

HERE = Path(__file__).parent


def create_app(
    settings: GroupsSettings | None = None, *, http_client: httpx.AsyncClient | None = None
) -> FastAPI:
    settings = settings or GroupsSettings()
    spec = ServiceSpec(
        name="groups",
        title="Groups",
        description="Purpose groups, their charters, membership flows and group health.",
        routers=routers,
        outbox_tables=outbox_tables,
        migrations_dir=HERE,
        principal=principal_from_claims,
        problem_descriptions=PROBLEM_DESCRIPTIONS,
        event_handlers=handlers,
        principal_check=PersonaCheck(PersonaReplica, wait=settings.unknown_persona_wait_seconds),
        retention=[
            idempotency.keys.retention(timedelta(hours=settings.idempotency_key_retention_hours)),
            health.history_retention(),
        ],
    )
    return create_service_app(spec, settings, http_client=http_client)
