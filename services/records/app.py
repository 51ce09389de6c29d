"""Records' app factory: ``uvicorn services.records.app:create_app --factory``."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from domain.contexts import PROBLEM_DESCRIPTIONS
from domain.principal import PersonaCheck, principal_from_claims
from kit.service import ServiceSpec, create_service_app
from services.records import disposition, exports, retention
from services.records.events import handlers
from services.records.models import PersonaReplica, outbox_tables
from services.records.routes import routers
from services.records.settings import RecordsSettings

HERE = Path(__file__).parent


def create_app(
    settings: RecordsSettings | None = None, *, http_client: httpx.AsyncClient | None = None
) -> FastAPI:
    settings = settings or RecordsSettings()
    spec = ServiceSpec(
        name="records",
        title="Records",
        description="The records copy, retention policies, legal holds, dispositions and exports.",
        routers=routers,
        outbox_tables=outbox_tables,
        migrations_dir=HERE,
        principal=principal_from_claims,
        problem_descriptions=PROBLEM_DESCRIPTIONS,
        event_handlers=handlers,
        # no cache: a role removed at identity is gone at the next request (as moderation's)
        principal_check=PersonaCheck(PersonaReplica, ttl=0, wait=settings.unknown_persona_wait_seconds),
        workers=[disposition.worker, exports.worker],
        on_startup=[disposition.on_startup],
        retention=retention.rules(settings),
    )
    return create_service_app(spec, settings, http_client=http_client)
