"""The skeleton every service app is built on: middleware, errors, database, token
verification, health probes, Prometheus metrics, tracing when configured, and the outbox relay
running for the app's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel

from kit import tracing
from kit.db import Database
from kit.errors import PROBLEM_JSON, PROBLEM_SCHEMA, install_error_handlers
from kit.health import health_router
from kit.housekeeping import Housekeeper, Retention, outbox_retention
from kit.inputs import refuse_unstorable_input
from kit.logging import configure_logging
from kit.metrics import install_metrics
from kit.middleware import BodyLimitMiddleware, RequestContextMiddleware
from kit.outbox import EventHandler, Outbox, OutboxTables, Relay, event_receiver
from kit.runtime import freeze_startup_objects
from kit.settings import ServiceSettings
from kit.tokens import JWKSKeySource, KeySource, TokenVerifier, VerifiedClaims

PROBLEM_DESCRIPTIONS: dict[int, str] = {
    400: "Bad request",
    401: "Missing or invalid bearer token",
    403: "Forbidden: not the caller's to do, or the token lacks the scope it needs (insufficient-scope)",
    404: "Not found",
    422: "Invalid fields",
}
"""The problem answers any operation may give, as every service's OpenAPI document lists them;
a service may describe them its own way (``ServiceSpec.problem_descriptions``)."""


def problem_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, object]]:
    """``PROBLEM_DESCRIPTIONS`` with the service's own ``descriptions``, as OpenAPI responses."""
    return {
        code: {
            "description": description,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for code, description in {**PROBLEM_DESCRIPTIONS, **descriptions}.items()
    }


class Worker(Protocol):
    """A background loop that runs for the app's lifetime and ends when ``stopping`` is set."""

    stopping: asyncio.Event

    async def run(self) -> None: ...


@dataclass
class ServiceSpec:
    """What makes one service different from another."""

    name: str
    title: str
    description: str
    routers: Sequence[APIRouter]
    outbox_tables: OutboxTables
    migrations_dir: Path | None
    # What a verified access token stands for: routes get it from the service's dependencies.
    principal: Callable[[VerifiedClaims], object]
    event_handlers: Mapping[str, EventHandler] = field(default_factory=dict)
    key_source: KeySource | None = None
    # Holds each request's principal against the service's own state (None: no such check).
    principal_check: Callable[[Request, Any], Awaitable[None]] | None = None
    problem_descriptions: Mapping[int, str] = field(default_factory=dict)
    workers: Sequence[Callable[[FastAPI], Worker]] = ()
    on_startup: Sequence[Callable[[FastAPI], object]] = ()
    # Run after the workers have stopped, before the database is closed.
    on_shutdown: Sequence[Callable[[FastAPI], object]] = ()
    # (method, path) pairs whose route bounds its own body as it streams (an upload): the
    # service's body limit does not apply to them.
    unbounded_bodies: Collection[tuple[str, str]] = ()
    retention: Sequence[Retention] = ()


def create_service_app(
    spec: ServiceSpec, settings: ServiceSettings, *, http_client: httpx.AsyncClient | None = None
) -> FastAPI:
    configure_logging(spec.name, settings.log_level, as_json=settings.log_json)
    database = Database(
        settings.database_url, echo=settings.database_echo, pool_size=settings.database_pool_size
    )
    client = http_client or httpx.AsyncClient(timeout=settings.relay_timeout_seconds)
    key_source = spec.key_source or JWKSKeySource(
        settings.jwks_url, client=client, cache_seconds=settings.jwks_cache_seconds
    )
    verifier = TokenVerifier(
        key_source,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        leeway=settings.token_leeway_seconds,
        max_lifetime=settings.token_max_lifetime_seconds,
        principal=spec.principal,
    )
    outbox = Outbox(spec.outbox_tables, spec.name, settings.subscribers)
    relay = Relay(
        outbox,
        database,
        token=settings.internal_token.get_secret_value(),
        client=client,
        interval=settings.relay_interval_seconds,
        linger=settings.relay_linger_seconds,
        batch_size=settings.relay_batch_size,
        timeout=settings.relay_timeout_seconds,
        max_backoff=settings.relay_max_backoff_seconds,
        max_attempts=settings.relay_max_attempts,
    )

    days = timedelta(days=1)
    housekeeper = Housekeeper(
        database,
        [
            *outbox_retention(
                spec.outbox_tables,
                events=settings.outbox_retention_days * days,
                processed=settings.processed_event_retention_days * days,
            ),
            *spec.retention,
        ],
        interval=settings.housekeeping_interval_seconds,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for hook in spec.on_startup:
            result = hook(app)
            if asyncio.iscoroutine(result):
                await result
        freeze_startup_objects()
        task = None
        if settings.relay_enabled and settings.subscribers:
            task = asyncio.create_task(relay.run(), name=f"{spec.name}-relay")
        app.state.relay_task = task
        workers = [*(make(app) for make in spec.workers), housekeeper]
        app.state.workers = workers
        worker_tasks = [asyncio.create_task(w.run()) for w in workers] if settings.relay_enabled else []
        try:
            yield
        finally:
            relay.stopping.set()
            for worker in workers:
                worker.stopping.set()
            if task is not None:
                await task
            for worker_task in worker_tasks:
                await worker_task
            for hook in spec.on_shutdown:
                result = hook(app)
                if asyncio.iscoroutine(result):
                    await result
            if http_client is None:
                await client.aclose()
            await database.dispose()
            tracing.shutdown_tracing(app)

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version="0.1.0",
        lifespan=lifespan,
        responses=problem_responses(spec.problem_descriptions),
        # Starlette's slash redirect names the address the request reached: behind the
        # gateway, the service's own. A path with a stray slash is a 404 like any other.
        redirect_slashes=False,
        dependencies=[Depends(refuse_unstorable_input)],
    )
    app.state.settings = settings
    app.state.database = database
    app.state.verifier = verifier
    app.state.outbox = outbox
    app.state.relay = relay
    app.state.housekeeper = housekeeper
    app.state.http_client = client
    app.state.principal_check = spec.principal_check
    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware, max_body_size=settings.max_body_size, unbounded=spec.unbounded_bodies
    )
    relay.register_metrics(install_metrics(app).registry)
    app.add_middleware(RequestContextMiddleware)
    tracing.install_tracing(app, tracing.provider_from_env(spec.name), [client])
    app.include_router(health_router(spec.migrations_dir))
    app.include_router(event_receiver(spec.outbox_tables, spec.event_handlers))
    for router in spec.routers:
        app.include_router(router)
    _finish_document(app, problem_responses(spec.problem_descriptions))
    return app


def _finish_document(app: FastAPI, defaults: Mapping[int | str, dict[str, object]]) -> None:
    """Adds the Problem schema to the service's OpenAPI document, with the bodies of
    ``documented_body``, and keeps it to what is sent: the app-wide 401 only on operations that
    take a token, the app-wide 404 only on those with a path parameter (an operation that
    answers 404 otherwise says so in its own ``responses``), no app-wide problem on an
    operation whose errors have a format of their own, and request bodies' defaults in words
    (``request_defaults_in_words``)."""
    original = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {})
        assert isinstance(components, dict)
        schemas = components.setdefault("schemas", {})
        schemas["Problem"] = copy.deepcopy(PROBLEM_SCHEMA)
        paths = schema.get("paths", {})
        assert isinstance(paths, dict)
        for operations in paths.values():
            for operation in operations.values():
                _drop_unsent_defaults(operation, defaults)
        _add_documented_bodies(schema, schemas)
        request_defaults_in_words(paths, schemas)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_DOCUMENTED_BODIES: dict[str, type[BaseModel]] = {}


def documented_body(model: type[BaseModel], *media_types: str) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its body itself rather than through a typed
    parameter (a format with rules no model states): the body is ``model``, in each of
    ``media_types``, under the model's name in the components."""
    known = _DOCUMENTED_BODIES.setdefault(model.__name__, model)
    assert known is model, f"two documented bodies are named {model.__name__}"
    ref = {"$ref": _SCHEMA_REF + model.__name__}
    return {"requestBody": {"required": True, "content": {media: {"schema": ref} for media in media_types}}}


def _add_documented_bodies(document: Mapping[str, Any], schemas: dict[str, Any]) -> None:
    """The components of ``documented_body``'s models that the document names, with the models
    they hold; FastAPI adds only those of typed parameters and responses."""
    named = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document)))
    for name in sorted(named - schemas.keys()):
        model = _DOCUMENTED_BODIES.get(name)
        if model is None:
            continue
        generated = model.model_json_schema(ref_template=_SCHEMA_REF + "{model}")
        for nested, nested_schema in generated.pop("$defs", {}).items():
            schemas.setdefault(nested, nested_schema)
        schemas[name] = generated
    # FastAPI's own schema of a body that a documented one replaced (form fields: Body_…).
    for name in [n for n in schemas if n.startswith("Body_") and n not in named]:
        del schemas[name]


def _drop_unsent_defaults(operation: dict[str, Any], defaults: Mapping[int | str, object]) -> None:
    responses: dict[str, Any] = operation.get("responses", {})
    takes_token = bool(operation.get("security"))
    has_path_parameter = any(p.get("in") == "path" for p in operation.get("parameters", []))
    # An operation that answers its errors in a format of its own (SCIM's) sends no problem.
    own_errors = any(
        status.startswith("4") and answer.get("content") and PROBLEM_JSON not in answer["content"]
        for status, answer in responses.items()
    )
    for status in [s for s in responses if s.isdigit() and responses[s] == defaults.get(int(s))]:
        if (
            own_errors
            or (status == "401" and not takes_token)
            or (status == "404" and not has_path_parameter)
        ):
            del responses[status]


def request_defaults_in_words(paths: Mapping[str, Any], schemas: Mapping[str, Any]) -> None:
    """Moves each ``default`` of a schema that a request body uses into its description.

    A default is the value the server assumes when the client leaves the field out, yet
    openapi-typescript 7 (``defaultNonNullable``, on unless switched off) makes every property
    with a ``default`` required, in request bodies' named schemas too: a client would have to
    send what the server would assume. Stated in words, the field stays optional everywhere.
    Schemas that only responses use keep theirs: there the value is always sent."""
    seen: set[str] = set()
    pending = [op["requestBody"] for ops in paths.values() for op in ops.values() if "requestBody" in op]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_SCHEMA_REF):
                name = ref.removeprefix(_SCHEMA_REF)
                if name not in seen and name in schemas:
                    seen.add(name)
                    pending.append(schemas[name])
                continue
            for field_schema in node.get("properties", {}).values():
                _default_in_words(field_schema)
            pending.extend(node.values())


_SCHEMA_REF = "#/components/schemas/"


def _default_in_words(field_schema: object) -> None:
    if not isinstance(field_schema, dict) or "default" not in field_schema:
        return
    value = json.dumps(field_schema.pop("default"), ensure_ascii=False)
    said = f"Default: `{value}`."
    description = field_schema.get("description")
    field_schema["description"] = f"{description.rstrip()} {said}" if description else said
