"""Identity's app factory: ``uvicorn services.identity.app:create_app --factory``."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from domain.contexts import PROBLEM_DESCRIPTIONS
from domain.principal import principal_from_claims
from kit.service import ServiceSpec, create_service_app
from kit.tokens import JWKSKeySource
from services.identity import accounts, events, records, signin, verification, webhooks
from services.identity.deps import refuse_notices_tokens
from services.identity.keys import KeyRing, RingKeySource, SigningKey
from services.identity.mail import mailer_for
from services.identity.models import outbox_tables
from services.identity.oidc import ExternalProvider
from services.identity.passwords import Passwords
from services.identity.routes import routers
from services.identity.scim import ScimError, http_error_handler, scim_error_handler, validation_error_handler
from services.identity.settings import IdentitySettings

HERE = Path(__file__).parent


def _webhook_relay(app: FastAPI) -> webhooks.WebhookRelay:
    """Webhooks go to integrators' hosts, so they get a client of their own (no internal
    transport, no service token)."""
    settings: IdentitySettings = app.state.settings
    relay = webhooks.WebhookRelay(app.state.database, settings, app.state.webhook_client)
    app.state.webhook_relay = relay
    return relay


def _pending_statuses(app: FastAPI) -> accounts.PendingStatuses:
    settings: IdentitySettings = app.state.settings
    worker = accounts.PendingStatuses(
        app.state.database, app.state.outbox, interval=settings.pending_status_interval_seconds
    )
    app.state.pending_statuses = worker
    return worker


def _disposals(app: FastAPI) -> records.Disposals:
    settings: IdentitySettings = app.state.settings
    worker = records.Disposals(
        app.state.database, interval=settings.disposal_interval_seconds, batch=settings.disposal_batch
    )
    app.state.disposals = worker
    return worker


def _close_webhook_client(app: FastAPI) -> Awaitable[None]:
    """The delivery client identity made for itself (not one a caller passed in), closed once
    the webhook relay has stopped: its pooled connections to receivers would stay open."""
    client: httpx.AsyncClient = app.state.webhook_client
    return client.aclose()


def create_app(
    settings: IdentitySettings | None = None,
    *,
    keys: KeyRing | None = None,
    http_client: httpx.AsyncClient | None = None,
    webhook_client: httpx.AsyncClient | None = None,
) -> FastAPI:
    settings = settings or IdentitySettings()
    if keys is None:
        keys = (
            KeyRing.from_dir(settings.signing_key_dir)
            if settings.signing_key_dir
            else KeyRing([SigningKey.generate()])
        )
    key_source = RingKeySource(keys)
    spec = ServiceSpec(
        name="identity",
        title="Identity",
        description="Accounts, professional and personal personas, tokens and signing keys.",
        routers=routers,
        outbox_tables=outbox_tables,
        migrations_dir=HERE,
        principal=principal_from_claims,
        principal_check=refuse_notices_tokens,
        problem_descriptions=PROBLEM_DESCRIPTIONS,
        key_source=key_source,
        event_handlers=events.handlers,
        workers=[_webhook_relay, _pending_statuses, _disposals],
        retention=[webhooks.delivery_log_retention(), verification.retention(), *signin.retention()],
        on_shutdown=[] if webhook_client is not None else [_close_webhook_client],
    )
    app = create_service_app(spec, settings, http_client=http_client)
    app.add_exception_handler(ScimError, scim_error_handler)
    app.add_exception_handler(HTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.state.keys = keys
    app.state.mailer = mailer_for(settings)
    app.state.webhook_client = webhook_client or webhooks.delivery_client(settings)
    app.state.external_provider = None
    if settings.oidc_issuer and settings.oidc_jwks_url and settings.oidc_audience:
        app.state.external_provider = ExternalProvider(
            settings, JWKSKeySource(settings.oidc_jwks_url, client=app.state.http_client)
        )
    app.state.passwords = Passwords(
        time_cost=settings.password_time_cost,
        memory_cost=settings.password_memory_cost,
        parallelism=settings.password_parallelism,
    )
    return app
