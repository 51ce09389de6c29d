"""Feed's app factory: ``uvicorn services.feed.app:create_app --factory``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI

from domain.contexts import PROBLEM_DESCRIPTIONS
from domain.principal import PersonaCheck, principal_from_claims
from kit.service import ServiceSpec, create_service_app
from services.feed import idempotency, inbox, streams
from services.feed.events import handlers
from services.feed.models import PersonaReplica, outbox_tables
from services.feed.routes import routers, timelines
from services.feed.settings import FeedSettings

HERE = Path(__file__).parent


def create_app(
    settings: FeedSettings | None = None, *, http_client: httpx.AsyncClient | None = None
) -> FastAPI:
    settings = settings or FeedSettings()
    spec = ServiceSpec(
        name="feed",
        title="Feed",
        description="Posts, comments, reactions, follows and timelines, kept apart by context.",
        routers=routers,
        outbox_tables=outbox_tables,
        migrations_dir=HERE,
        principal=principal_from_claims,
        problem_descriptions=PROBLEM_DESCRIPTIONS,
        event_handlers=handlers,
        principal_check=PersonaCheck(PersonaReplica, ttl=5.0, wait=settings.unknown_persona_wait_seconds),
        retention=[
            idempotency.keys.retention(timedelta(hours=settings.idempotency_key_retention_hours)),
            *inbox.retention(timedelta(hours=settings.home_inbox_hours)),
            streams.tickets_retention(),
        ],
    )
    app = create_service_app(spec, settings, http_client=http_client)
    # The busiest read's fast path, matched before every other route (decision 0013).
    app.router.routes.insert(0, timelines.home_fast_path())
    return app
