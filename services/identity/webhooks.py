"""Webhooks for integrators: every service's events reach identity through the outbox; here
they fan out, once per endpoint that wants them, as CloudEvents signed per the Standard
Webhooks specification, retried with exponential back-off and then marked failed.

A professional-context endpoint never receives an event of the personal context unless an
administrator allowed that context for it. Payloads carry persona ids only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import json
import logging
import random
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from standardwebhooks import Webhook

from kit.db import Database, upsert
from kit.housekeeping import Retention
from kit.outbox import EventIn
from kit.timeutil import utcnow
from services.identity.models import WebhookDelivery, WebhookEndpoint
from services.identity.settings import IdentitySettings

log = logging.getLogger("identity.webhooks")
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
# Deliveries that are done (delivered or given up) stay in an endpoint's log this long.
DELIVERY_LOG_KEPT = timedelta(days=30)


def delivery_log_retention() -> Retention:
    return Retention(
        "webhook delivery log",
        WebhookDelivery.__table__,  # type: ignore[attr-defined]
        "created_at",
        DELIVERY_LOG_KEPT,
        condition=col(WebhookDelivery.status) != PENDING,
    )


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def url_problem(url: str, settings: IdentitySettings) -> str | None:
    """Why ``url`` may not receive webhooks, or None. No credentials, https (http only when
    configured for development), the host on the allow-list when there is one, and never an
    internal address when there is none."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not settings.webhook_allow_http):
        return "must use https"
    if parts.username or parts.password or "@" in parts.netloc:
        return "must not carry credentials"
    if not host or port == 0:
        return "needs a host"
    if settings.webhook_allowed_hosts:
        return (
            None
            if host.lower() in {h.lower() for h in settings.webhook_allowed_hosts}
            else "host is not allowed"
        )
    if host.lower() in ("localhost", "localhost.localdomain") or host.endswith(".internal"):
        return "must not name an internal host"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address.is_global:
        return "must not name an internal address"
    return None


def wants(endpoint: WebhookEndpoint, event: EventIn) -> bool:
    context = event.data.get("context")
    if context is not None and context not in endpoint.contexts:
        return False
    if (
        context is None
        and "personal" not in endpoint.contexts
        and event.type.startswith(("comment.", "reaction."))
    ):
        return False  # an event that does not say its context only goes where both contexts may
    return any(
        p == "*" or p == event.type or (p.endswith(".*") and event.type.startswith(p[:-1]))
        for p in endpoint.event_types
    )


def cloud_event(event: EventIn) -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(event.id),
            "source": f"/govsocial/{event.source}",
            "type": event.type,
            "subject": event.subject,
            "time": event.time.isoformat(),
            "datacontenttype": "application/json",
            "data": event.data,
        },
        separators=(",", ":"),
    )


async def enqueue(session: AsyncSession, event: EventIn) -> None:
    """The receiver's handler for every event: one delivery per interested endpoint, in the
    transaction that marks the event processed."""
    endpoints = (
        await session.scalars(select(WebhookEndpoint).where(col(WebhookEndpoint.active).is_(True)))
    ).all()
    payload = cloud_event(event)
    for endpoint in endpoints:
        if wants(endpoint, event):
            values = {
                "endpoint_id": endpoint.id,
                "event_id": event.id,
                "event_type": event.type,
                "subject": event.subject[:100],
                "payload": payload,
                "status": PENDING,
                "attempt_count": 0,
                "next_attempt_at": utcnow(),
                "created_at": utcnow(),
            }
            await upsert(session, WebhookDelivery, values, ["endpoint_id", "event_id"], update=False)


class WebhookRelay:
    """Sends due deliveries; one per process, like the outbox relay, and safe with replicas
    (rows are claimed FOR UPDATE SKIP LOCKED on PostgreSQL)."""

    def __init__(self, database: Database, settings: IdentitySettings, client: httpx.AsyncClient) -> None:
        self.database = database
        self.settings = settings
        self.client = client
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                sent = await self.deliver_once()
            except Exception:
                log.exception("webhook relay pass failed")
                sent = 0
            if not sent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), self.settings.webhook_relay_interval_seconds)

    async def deliver_once(self, batch: int = 50) -> int:
        now = utcnow()
        done = 0
        async with self.database.sessionmaker() as session, session.begin():
            query = (
                select(WebhookDelivery, WebhookEndpoint)
                .join(WebhookEndpoint, col(WebhookEndpoint.id) == WebhookDelivery.endpoint_id)
                .where(col(WebhookDelivery.status) == PENDING)
                .order_by(col(WebhookDelivery.id))
                .limit(batch)
            )
            if self.database.is_postgres:
                query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
            rows = (await session.execute(query)).all()
            blocked: set[tuple[object, str]] = set()
            for delivery, endpoint in rows:
                key = (delivery.endpoint_id, delivery.subject)
                if key in blocked:
                    continue
                if delivery.next_attempt_at > now or not endpoint.active:
                    blocked.add(key)  # keeps the order of events about one resource
                    continue
                ok = await self._send(delivery, endpoint)
                done += 1 if ok else 0
                if not ok:
                    blocked.add(key)
        return done

    async def _send(self, delivery: WebhookDelivery, endpoint: WebhookEndpoint) -> bool:
        moment = utcnow()
        message_id = f"msg_{delivery.event_id}"
        signature = Webhook(endpoint.secret).sign(message_id, moment, delivery.payload)
        headers = {
            "content-type": "application/cloudevents+json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signature,
        }
        delivery.attempt_count += 1
        try:
            resp = await self.client.post(
                endpoint.url,
                content=delivery.payload,
                headers=headers,
                timeout=self.settings.webhook_timeout_seconds,
                follow_redirects=False,
            )
            delivery.last_status_code = resp.status_code
            error = None if 200 <= resp.status_code < 300 else f"HTTP {resp.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        if error is None:
            delivery.status, delivery.delivered_at, delivery.last_error = DELIVERED, utcnow(), None
            return True
        delivery.last_error = error
        if delivery.attempt_count >= self.settings.webhook_max_attempts:
            delivery.status = FAILED
        else:
            wait = min(self.settings.webhook_max_backoff_seconds, 2 ** min(delivery.attempt_count, 20))
            delivery.next_attempt_at = utcnow() + timedelta(seconds=wait * (0.75 + random.random() / 2))  # noqa: S311
        return False


async def redeliver(session: AsyncSession, delivery: WebhookDelivery) -> None:
    await session.execute(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.id) == delivery.id)
        .values(status=PENDING, attempt_count=0, next_attempt_at=utcnow(), last_error=None)
    )
