"""``/api/v1/webhooks``: endpoints, their delivery logs, redelivery and a test event."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from sqlmodel import col

from kit.db import SessionDep
from kit.errors import Conflict, Forbidden, NotFound, Unauthorized, Unprocessable
from kit.ids import new_id
from kit.inputs import SerialId
from kit.outbox import EventIn
from kit.pagination import Cursor, Limit, Page, decode_id_cursor, decode_serial_cursor, paginate
from kit.timeutil import utcnow
from kit.tokens import CurrentPrincipal
from services.identity import clients, webhooks
from services.identity.deps import SettingsDep
from services.identity.models import Account, Persona, WebhookDelivery, WebhookEndpoint
from services.identity.schemas import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPublic,
    WebhookPublic,
    WebhookUpdate,
)


@dataclass
class Owner:
    key: str
    is_admin: bool


async def _owner(principal: CurrentPrincipal, session: SessionDep) -> Owner:
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
        or account.status != "active"
        or "admin" not in account.roles
        or not principal.has_role("admin")
    ):
        raise Forbidden("Webhooks are managed by administrators and integrator clients.")
    return Owner(str(principal.persona_id), True)


OwnerDep = Annotated[Owner, Depends(_owner)]
router = APIRouter(
    prefix="/api/v1/webhooks",
    tags=["webhooks"],
    responses={403: {"description": "Not an admin or webhooks client"}},
)


def _public(endpoint: WebhookEndpoint) -> WebhookPublic:
    return WebhookPublic.model_validate(endpoint, from_attributes=True)


async def _check(
    url: str | None, contexts: Sequence[str] | None, owner: Owner, settings: SettingsDep
) -> None:
    if url is not None and (problem := await webhooks.registration_problem(url, settings)):
        raise Unprocessable(
            f"The URL {problem}.", errors=[{"location": "body.url", "message": problem, "code": "url"}]
        )
    if contexts is not None and "personal" in contexts and not owner.is_admin:
        raise Forbidden("Only an administrator can allow the personal context for an endpoint.")


async def _endpoint(session: SessionDep, owner: Owner, webhook_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, webhook_id)
    if endpoint is None or (not owner.is_admin and endpoint.owner != owner.key):
        raise NotFound("No webhook with this id.")
    return endpoint


@router.post(
    "", status_code=201, summary="Register a webhook endpoint", responses={422: {"description": "Bad URL"}}
)
async def create_webhook(
    body: WebhookCreate, session: SessionDep, owner: OwnerDep, settings: SettingsDep, response: Response
) -> WebhookCreated:
    """The signing secret is in this response only."""
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
    response.headers["Location"] = f"/api/v1/webhooks/{endpoint.id}"
    return WebhookCreated(**_public(endpoint).model_dump(), secret=endpoint.secret)


@router.get("", summary="List webhook endpoints")
async def list_webhooks(
    request: Request,
    response: Response,
    session: SessionDep,
    owner: OwnerDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[WebhookPublic]:
    after = decode_id_cursor("webhooks", cursor)
    query = select(WebhookEndpoint)
    if not owner.is_admin:
        query = query.where(col(WebhookEndpoint.owner) == owner.key)
    if after:
        query = query.where(col(WebhookEndpoint.id) > after)
    rows = (await session.scalars(query.order_by(col(WebhookEndpoint.id)).limit(limit + 1))).all()
    page = paginate(request, response, rows, limit=limit, scope="webhooks", key=lambda e: [str(e.id)])
    return Page[WebhookPublic](items=[_public(e) for e in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{webhook_id}", summary="A webhook endpoint", responses={404: {"description": "No such webhook"}}
)
async def get_webhook(webhook_id: uuid.UUID, session: SessionDep, owner: OwnerDep) -> WebhookPublic:
    return _public(await _endpoint(session, owner, webhook_id))


@router.patch(
    "/{webhook_id}",
    summary="Change a webhook endpoint",
    responses={404: {"description": "No such webhook"}, 409: {"description": "The owning client is revoked"}},
)
async def update_webhook(
    webhook_id: uuid.UUID, body: WebhookUpdate, session: SessionDep, owner: OwnerDep, settings: SettingsDep
) -> WebhookPublic:
    endpoint = await _endpoint(session, owner, webhook_id)
    await _check(body.url, body.contexts, owner, settings)
    if body.active and await webhooks.client_revoked(session, endpoint.owner):
        raise Conflict("The endpoint's client has been revoked; its endpoints stay disabled.")
    for field, value in body.model_dump(exclude_unset=True).items():
        setattr(endpoint, field, sorted(set(value)) if isinstance(value, list) else value)
    endpoint.updated_at = utcnow()
    await session.commit()
    return _public(endpoint)


@router.delete(
    "/{webhook_id}",
    status_code=204,
    summary="Remove a webhook endpoint",
    responses={404: {"description": "No such webhook"}},
)
async def delete_webhook(webhook_id: uuid.UUID, session: SessionDep, owner: OwnerDep) -> None:
    await session.delete(await _endpoint(session, owner, webhook_id))
    await session.commit()


@router.get(
    "/{webhook_id}/deliveries",
    summary="An endpoint's delivery log, newest first",
    responses={404: {"description": "No such webhook"}},
)
async def list_deliveries(
    webhook_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    owner: OwnerDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[WebhookDeliveryPublic]:
    endpoint = await _endpoint(session, owner, webhook_id)
    scope = f"deliveries:{endpoint.id}"
    before = decode_serial_cursor(scope, cursor)
    query = select(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint.id)
    if before is not None:
        query = query.where(col(WebhookDelivery.id) < before)
    rows = (await session.scalars(query.order_by(col(WebhookDelivery.id).desc()).limit(limit + 1))).all()
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda d: [d.id])
    return Page[WebhookDeliveryPublic](
        items=[WebhookDeliveryPublic.model_validate(d, from_attributes=True) for d in page.items],
        next_cursor=page.next_cursor,
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    summary="Send a delivery again",
    responses={404: {"description": "No such webhook or delivery"}},
)
async def redeliver(
    webhook_id: uuid.UUID,
    delivery_id: SerialId,
    session: SessionDep,
    owner: OwnerDep,
) -> dict[str, str]:
    endpoint = await _endpoint(session, owner, webhook_id)
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise NotFound("No delivery with this id.")
    await webhooks.redeliver(session, delivery)
    await session.commit()
    return {"status": "queued"}


@router.post(
    "/{webhook_id}/test",
    status_code=202,
    summary="Send a webhook.test event",
    responses={404: {"description": "No such webhook"}},
)
async def test_webhook(webhook_id: uuid.UUID, session: SessionDep, owner: OwnerDep) -> dict[str, str]:
    endpoint = await _endpoint(session, owner, webhook_id)
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
    return {"status": "queued", "event_id": str(event.id)}
