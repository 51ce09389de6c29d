"""Groups' app factory: ``uvicorn services.groups.app:create_app --factory``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI

from kit.housekeeping import Retention
from kit.outbox import Outbox
from kit.service import ServiceSpec, create_service_app
from kit.tokens import PersonaStatusCheck
from services.groups import health
from services.groups.events import handlers
from services.groups.models import IdempotencyKey, PersonaReplica, outbox_tables
from services.groups.routes import routers
from services.groups.settings import GroupsSettings

HERE = Path(__file__).parent


def create_app(
    settings: GroupsSettings | None = None, *, http_client: httpx.AsyncClient | None = None
) -> FastAPI:
    settings = settings or GroupsSettings()

    def outbox() -> Outbox:
        built: Outbox = app.state.outbox
        return built

    spec = ServiceSpec(
        name="groups",
        title="Groups",
        description="Purpose groups, their charters, membership flows and group health.",
        routers=routers,
        outbox_tables=outbox_tables,
        migrations_dir=HERE,
        event_handlers=handlers(outbox),
        principal_check=PersonaStatusCheck(PersonaReplica),
        retention=[
            Retention(
                "idempotency keys",
                IdempotencyKey.__table__,  # type: ignore[attr-defined]
                "created_at",
                timedelta(hours=settings.idempotency_key_retention_hours),
            ),
            health.history_retention(),
        ],
    )
    app = create_service_app(spec, settings, http_client=http_client)
    return app
