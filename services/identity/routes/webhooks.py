"""``/api/v1/webhooks``: endpoints, their delivery logs, redelivery and a test event
(services/identity/endpoints.py holds the rules)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from kit.inputs import SerialId
from kit.pagination import Cursor, Limit, Page, decode_id_cursor, decode_serial_cursor, paginate
from services.identity import endpoints
from services.identity.deps import SessionDep, SettingsDep, WebhookOwnerDep
from services.identity.schemas import (
    DeliveryQueued,
    TestDeliveryQueued,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPublic,
    WebhookPublic,
    WebhookUpdate,
    delivery_public,
    webhook_public,
)

router = APIRouter(
    prefix="/api/v1/webhooks",
    tags=["webhooks"],
    responses={403: {"description": "Not an admin or webhooks client"}},
)


@router.post(
    "", status_code=201, summary="Register a webhook endpoint", responses={422: {"description": "Bad URL"}}
)
async def create_webhook(
    body: WebhookCreate,
    session: SessionDep,
    owner: WebhookOwnerDep,
    settings: SettingsDep,
    response: Response,
) -> WebhookCreated:
    """The signing secret is in this response only. What each event type carries, and how to
    verify a delivery's signature: the document's `webhooks` section and docs/events.md."""
    endpoint = await endpoints.register(session, owner, settings, body)
    response.headers["Location"] = f"/api/v1/webhooks/{endpoint.id}"
    return WebhookCreated(**webhook_public(endpoint).model_dump(), secret=endpoint.secret)


@router.get("", summary="List webhook endpoints")
async def list_webhooks(
    request: Request,
    response: Response,
    session: SessionDep,
    owner: WebhookOwnerDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[WebhookPublic]:
    after = decode_id_cursor("webhooks", cursor)
    rows = await endpoints.endpoints_of(session, owner, after=after, limit=limit)
    page = paginate(request, response, rows, limit=limit, scope="webhooks", key=lambda e: [str(e.id)])
    return Page[WebhookPublic](items=[webhook_public(e) for e in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{webhook_id}", summary="A webhook endpoint", responses={404: {"description": "No such webhook"}}
)
async def get_webhook(webhook_id: uuid.UUID, session: SessionDep, owner: WebhookOwnerDep) -> WebhookPublic:
    return webhook_public(await endpoints.endpoint_of(session, owner, webhook_id))


@router.patch(
    "/{webhook_id}",
    summary="Change a webhook endpoint",
    responses={404: {"description": "No such webhook"}, 409: {"description": "The owning client is revoked"}},
)
async def update_webhook(
    webhook_id: uuid.UUID,
    body: WebhookUpdate,
    session: SessionDep,
    owner: WebhookOwnerDep,
    settings: SettingsDep,
) -> WebhookPublic:
    return webhook_public(await endpoints.change(session, owner, settings, webhook_id, body))


@router.delete(
    "/{webhook_id}",
    status_code=204,
    summary="Remove a webhook endpoint",
    responses={404: {"description": "No such webhook"}},
)
async def delete_webhook(webhook_id: uuid.UUID, session: SessionDep, owner: WebhookOwnerDep) -> None:
    await endpoints.remove(session, owner, webhook_id)


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
    owner: WebhookOwnerDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[WebhookDeliveryPublic]:
    endpoint = await endpoints.endpoint_of(session, owner, webhook_id)
    scope = f"deliveries:{endpoint.id}"
    before = decode_serial_cursor(scope, cursor)
    rows = await endpoints.deliveries(session, endpoint, before=before, limit=limit)
    page = paginate(request, response, rows, limit=limit, scope=scope, key=lambda d: [d.id])
    return Page[WebhookDeliveryPublic](
        items=[delivery_public(d) for d in page.items], next_cursor=page.next_cursor
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
    owner: WebhookOwnerDep,
) -> DeliveryQueued:
    await endpoints.redeliver(session, owner, webhook_id, delivery_id)
    return DeliveryQueued()


@router.post(
    "/{webhook_id}/test",
    status_code=202,
    summary="Send a webhook.test event",
    responses={404: {"description": "No such webhook"}},
)
async def test_webhook(
    webhook_id: uuid.UUID, session: SessionDep, owner: WebhookOwnerDep
) -> TestDeliveryQueued:
    event_id = await endpoints.send_test(session, owner, webhook_id)
    return TestDeliveryQueued(event_id=event_id)
