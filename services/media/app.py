"""Media's app factory: ``uvicorn services.media.app:create_app --factory``."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from domain.contexts import PROBLEM_DESCRIPTIONS
from domain.principal import PersonaCheck, principal_from_claims
from kit.service import ServiceSpec, create_service_app
from services.media import storage, sweeping, worker
from services.media.events import handlers
from services.media.models import PersonaReplica, outbox_tables
from services.media.routes import routers
from services.media.settings import MediaSettings

HERE = Path(__file__).parent

UPLOAD = ("POST", "/api/v1/media")
"""The one route whose body is not bounded by ``max_body_size``: it bounds its own as it
streams (``uploading``)."""


def create_app(
    settings: MediaSettings | None = None, *, http_client: httpx.AsyncClient | None = None
) -> FastAPI:
    settings = settings or MediaSettings()
    spec = ServiceSpec(
        name="media",
        title="Media",
        description="Files and images on posts, comments, avatars and groups: upload, processing, serving.",
        routers=routers,
        outbox_tables=outbox_tables,
        migrations_dir=HERE,
        principal=principal_from_claims,
        problem_descriptions=PROBLEM_DESCRIPTIONS,
        event_handlers=handlers,
        principal_check=PersonaCheck(PersonaReplica, wait=settings.unknown_persona_wait_seconds),
        workers=[worker.worker, sweeping.worker],
        on_startup=[storage.on_startup],
        on_shutdown=[storage.on_shutdown],
        unbounded_bodies=[UPLOAD],
    )
    return create_service_app(spec, settings, http_client=http_client)
