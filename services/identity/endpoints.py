"""Webhook endpoints as their owners manage them: who may (an integrator client with the
``webhooks`` scope, or an administrator), registering, changing and removing an endpoint, and
sending it a test event. Delivery itself is services/identity/webhooks.py's."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.principal import Principal
from kit.errors import Conflict, Forbidden, NotFound, Unauthorized, Unprocessable
from kit.ids import new_id
from kit.outbox import EventIn
from kit.timeutil import utcnow
from services.identity import clients, personas, webhooks
from services.identity.models import Account, Persona, WebhookDelivery, WebhookEndpoint
from services.identity.schemas import WebhookCreate, WebhookUpdate
from services.identity.settings import IdentitySettings


@dataclass
class Owner:
    """Who manages endpoints: ``key`` is what an endpoint's ``owner`` holds (``client:<id>`` or
    the administrator's persona id); administrators see and manage every endpoint."""

    key: str
    is_admin: bool


async def owner_of(session: AsyncSession, principal: Principal) -> Owner:
    """An integrator client with the `webhooks` scope, or an administrator."""
    if principal.client_id is not None:
        if not await clients.is_active(session, principal):
            raise Unauthorized("The client has been revoked.")
        if "webhooks" not in principal.scopes:
            raise Forbidden("This client lacks the webhooks scope.")
        return Owner(f"client:{principal.client_id}", False)
    persona = await session.get(Persona, principal.persona_id)
    account = await session.get(Account, persona.account_id) if persona else None
    if (
        account is None
        or persona is None
        or personas.effective_status(persona) != "active"
        or account.status != "active"
        or "admin" not in account.roles
        or not principal.has_role("admin")
    ):
        raise Forbidden("Webhooks are managed by administrators and integrator clients.")
    return Owner(str(principal.persona_id), True)


async def _check(
    url: str | None, contexts: Sequence[str] | None, owner: Owner, settings: IdentitySettings
) -> None:
    if url is not None and (problem := await webhooks.registration_problem(url, settings)):
        raise Unprocessable(
            "The URL {problem}.",
            params={"problem": problem},
            errors=[{"location": "body.url", "message": problem, "code": "url"}],
        )
    if contexts is not None and "personal" in contexts and not owner.is_admin:
        raise Forbidden("Only an administrator can allow the personal context for an endpoint.")


async def endpoint_of(session: AsyncSession, owner: Owner, webhook_id: uuid.UUID) -> WebhookEndpoint:
    """The owner's endpoint (any, for an administrator); another's answers as a missing one."""
    endpoint = await session.get(WebhookEndpoint, webhook_id)
    if endpoint is None or (not owner.is_admin and endpoint.owner != owner.key):
        raise NotFound("No webhook with this id.")
    return endpoint


async def register(
    session: AsyncSession, owner: Owner, settings: IdentitySettings, body: WebhookCreate
) -> WebhookEndpoint:
    """A new endpoint with a fresh signing secret."""
    await _check(body.url, body.contexts, owner, settings)
    endpoint = WebhookEndpoint(
        owner=owner.key,
        url=body.url,
        description=body.description,
        event_types=sorted(set(body.event_types)),
        contexts=sorted(set(body.contexts)),
        secret=webhooks.new_secret(),
    )
    session.add(endpoint)
    await session.commit()
    return endpoint


async def endpoints_of(
    session: AsyncSession, owner: Owner, *, after: uuid.UUID | None, limit: int
) -> Sequence[WebhookEndpoint]:
    """A page of the owner's endpoints (every endpoint, for an administrator)."""
    query = select(WebhookEndpoint)
    if not owner.is_admin:
        query = query.where(col(WebhookEndpoint.owner) == owner.key)
    if after:
        query = query.where(col(WebhookEndpoint.id) > after)
    return (await session.scalars(query.order_by(col(WebhookEndpoint.id)).limit(limit + 1))).all()


async def change(
    session: AsyncSession,
    owner: Owner,
    settings: IdentitySettings,
    webhook_id: uuid.UUID,
    body: WebhookUpdate,
) -> WebhookEndpoint:
    """Changes the fields sent; a revoked client's endpoint cannot be switched on again."""
    endpoint = await endpoint_of(session, owner, webhook_id)
    await _check(body.url, body.contexts, owner, settings)
    if body.active and await webhooks.client_revoked(session, endpoint.owner):
        raise Conflict("The endpoint's client has been revoked; its endpoints stay disabled.")
    for field, value in body.model_dump(exclude_unset=True).items():
        setattr(endpoint, field, sorted(set(value)) if isinstance(value, list) else value)
    endpoint.updated_at = utcnow()
    await session.commit()
    return endpoint


async def remove(session: AsyncSession, owner: Owner, webhook_id: uuid.UUID) -> None:
    await session.delete(await endpoint_of(session, owner, webhook_id))
    await session.commit()


async def deliveries(
    session: AsyncSession, endpoint: WebhookEndpoint, *, before: int | None, limit: int
) -> Sequence[WebhookDelivery]:
    """A page of the endpoint's delivery log, newest first."""
    query = select(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint.id)
    if before is not None:
        query = query.where(col(WebhookDelivery.id) < before)
    return (await session.scalars(query.order_by(col(WebhookDelivery.id).desc()).limit(limit + 1))).all()


async def redeliver(session: AsyncSession, owner: Owner, webhook_id: uuid.UUID, delivery_id: int) -> None:
    """Queues one of the owner's deliveries again."""
    endpoint = await endpoint_of(session, owner, webhook_id)
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise NotFound("No delivery with this id.")
    await webhooks.redeliver(session, delivery)
    await session.commit()


async def send_test(session: AsyncSession, owner: Owner, webhook_id: uuid.UUID) -> uuid.UUID:
    """Queues a ``webhook.test`` event for the endpoint; returns the event's id."""
    endpoint = await endpoint_of(session, owner, webhook_id)
    event = EventIn(
        id=new_id(),
        type="webhook.test",
        source="identity",
        subject=str(endpoint.id),
        time=utcnow(),
        data={"webhook_id": str(endpoint.id), "message": "A test event."},
    )
    session.add(
        WebhookDelivery(
            endpoint_id=endpoint.id,
            event_id=event.id,
            event_type=event.type,
            subject=event.subject,
            payload=webhooks.cloud_event(event),
        )
    )
    await session.commit()
    return event.id
