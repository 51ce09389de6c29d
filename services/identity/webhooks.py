"""Webhooks for integrators: every service's events reach identity through the outbox; here
they fan out, once per endpoint that wants them, as CloudEvents signed per the Standard
Webhooks specification, retried with exponential back-off and then marked failed.

A professional-context endpoint never receives an event of the personal context unless an
administrator allowed that context for it, and no endpoint receives an ``internal.*`` event.
Each payload is the event's data as the catalogue of public events makes it for subscribers
(``domain.catalogue``, docs/events.md): a type it does not list reaches no endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import ipaddress
import json
import logging
import random
import re
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import httpcore
import httpx
from pydantic import ValidationError
from sqlalchemy import exists, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from standardwebhooks import Webhook

from domain.catalogue import SPEC_VERSION, NotCatalogued, webhook_data
from kit.db import Database, upsert
from kit.housekeeping import Retention
from kit.outbox import EventIn, delivery_scope
from kit.timeutil import utcnow
from services.identity.models import Client, WebhookDelivery, WebhookEndpoint
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


# Names that never denote a public host (RFC 6761, RFC 8375, common private zones).
INTERNAL_NAMES = ("localhost", "localhost.localdomain")
INTERNAL_SUFFIXES = (".localhost", ".internal", ".local", ".home.arpa", ".localdomain")
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")
_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
# Prefixes whose IPv6 addresses carry an IPv4 address that a translator would reach.
_TRANSLATED = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("::/96"),
)
RESOLVE_TIMEOUT_SECONDS = 2.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (``/etc/hosts``, DNS)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _embedded(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _TRANSLATED) and not address.is_unspecified and not address.is_loopback:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: IPAddress, *, trusted: bool) -> str | None:
    """Why a webhook may not be sent to ``address``, or None. An allow-listed host (``trusted``)
    may be on the organisation's own network (loopback, private); nothing may be unspecified,
    multicast, link-local (cloud metadata lives there) or reserved. Any other host must be
    public. An IPv6 address carrying an IPv4 one (mapped, 6to4, Teredo, NAT64) is judged by
    both."""
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and (inner := _embedded(address)) is not None:
        candidates = [inner] if address.ipv4_mapped is not None else [address, inner]
    for candidate in candidates:
        if (
            candidate.is_unspecified
            or candidate.is_multicast
            or candidate.is_link_local
            or candidate.is_reserved
        ):
            return "must not name an internal address"
        if not trusted and not candidate.is_global:
            return "must not name an internal address"
    return None


class AddressPolicy:
    """Where webhooks may go, decided on the addresses a host name resolves to, at the moment
    of connecting: every one of them must be allowed, and the connection goes to one of the
    very addresses that were checked (no second lookup that a rebinding DNS could answer
    differently)."""

    def __init__(self, settings: IdentitySettings, resolver: Resolver = system_resolve) -> None:
        self.allowed = {_normal(h) for h in settings.webhook_allowed_hosts}
        self.resolver = resolver

    def host_problem(self, host: str) -> str | None:
        name = _normal(host)
        if not name:
            return "needs a host"
        if ":" in name or "%" in name:
            try:
                address: IPAddress = ipaddress.IPv6Address(name)
            except ValueError:
                return "needs a valid host"
        elif _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
            # Resolvers read 2130706433, 0x7f000001, 127.1 or 0177.0.0.1 as addresses too.
            try:
                address = ipaddress.IPv4Address(name)
            except ValueError:
                return "must write an IP address in dotted decimal form"
        elif not _NAME.fullmatch(name):
            return "needs a valid host"
        else:
            if name in self.allowed:
                return None
            if self.allowed:
                return "host is not allowed"
            if name in INTERNAL_NAMES or name.endswith(INTERNAL_SUFFIXES):
                return "must not name an internal host"
            return None
        trusted = str(address) in self.allowed or name in self.allowed
        if self.allowed and not trusted:
            return "host is not allowed"
        return address_problem(address, trusted=trusted)

    def trusted(self, host: str) -> bool:
        return _normal(host) in self.allowed

    async def addresses(self, host: str, port: int, within: float | None = None) -> list[IPAddress]:
        """The addresses to connect to for ``host``; raises ``AddressRefused`` unless every
        address it resolves to is allowed."""
        if problem := self.host_problem(host):
            raise AddressRefused(f"The host {problem}.")
        try:
            async with asyncio.timeout(within):
                found = await self.resolver(_normal(host), port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"The host does not resolve: {type(exc).__name__}.") from exc
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout("The host name did not resolve in time.") from exc
        addresses: list[IPAddress] = []
        for text in found:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise httpcore.ConnectError("The host does not resolve.")
        trusted = self.trusted(host)
        for address in addresses:
            if problem := address_problem(address, trusted=trusted):
                raise AddressRefused(f"The host resolves to an address that is not allowed ({problem}).")
        return addresses


def _normal(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host[:-1] if host.endswith(".") else host


class AddressRefused(httpcore.ConnectError):
    """The webhook's host is, or resolves to, an address webhooks may not reach."""


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks every host before connecting, then connects to a checked address;
    TLS still verifies the certificate for, and sends as SNI, the host name of the URL."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for address in await self.policy.addresses(host, port, timeout):
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("Webhooks go over TCP only.")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@functools.cache
def _default_tls() -> ssl.SSLContext:
    """The system's trusted certificates, loaded once per process (about 20 ms each time) and
    shared by every delivery client: nothing changes a context once made."""
    return httpx.create_ssl_context(trust_env=False)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request and error mapping) over a connection pool whose network
    backend is guarded; no proxy from the environment (the check would judge the proxy)."""

    def __init__(self, policy: AddressPolicy, *, verify: ssl.SSLContext | bool = True) -> None:
        context = (
            _default_tls() if verify is True else httpx.create_ssl_context(verify=verify, trust_env=False)
        )
        super().__init__(verify=context, trust_env=False)  # the pool it makes is replaced below
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(policy),
        )


def delivery_client(
    settings: IdentitySettings, *, resolver: Resolver = system_resolve, verify: ssl.SSLContext | bool = True
) -> httpx.AsyncClient:
    """The client webhooks are sent with: every connection checked by ``AddressPolicy``."""
    return httpx.AsyncClient(
        transport=GuardedTransport(AddressPolicy(settings, resolver), verify=verify),
        timeout=settings.webhook_timeout_seconds,
        follow_redirects=False,
        trust_env=False,
    )


def url_problem(url: str, settings: IdentitySettings) -> str | None:
    """Why ``url`` may not receive webhooks, judged on the URL alone, or None. No credentials,
    https (http only when configured for development), the host on the allow-list when there
    is one, and never an internal host or address (in any spelling) when there is none."""
    try:
        parts = httpx.URL(url)
        port = parts.port
    except (httpx.InvalidURL, ValueError, TypeError):
        return "is not a URL"
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not settings.webhook_allow_http):
        return "must use https"
    if parts.userinfo:
        return "must not carry credentials"
    if port == 0:
        return "needs a host"
    return AddressPolicy(settings).host_problem(parts.host)


async def registration_problem(
    url: str, settings: IdentitySettings, resolver: Resolver = system_resolve
) -> str | None:
    """``url_problem``, and the addresses its host resolves to now. A name that does not
    resolve yet is accepted: every delivery checks again before it connects."""
    if problem := url_problem(url, settings):
        return problem
    parts = httpx.URL(url)
    policy = AddressPolicy(settings, resolver)
    try:
        await policy.addresses(
            parts.host, parts.port or (443 if parts.scheme == "https" else 80), RESOLVE_TIMEOUT_SECONDS
        )
    except AddressRefused:
        return "must not name a host with internal addresses"
    except (httpcore.ConnectError, httpcore.ConnectTimeout):
        return None
    return None


# Events between services only (decision 0032): they name moderators, groups' roles and held
# text, which no integrator receives, whatever its endpoint subscribed to.
INTERNAL_PREFIX = "internal."


def wants(endpoint: WebhookEndpoint, event: EventIn) -> bool:
    """Whether the endpoint receives the event: never an ``internal.*`` one; one that names its
    context only where the endpoint allows that context; then as its types say."""
    if event.type.startswith(INTERNAL_PREFIX):
        return False
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
    """The webhook body of ``event``: a CloudEvent (``domain.catalogue.CloudEvent``) whose data
    is what subscribers may receive of it; ``NotCatalogued`` or ``ValidationError`` for an event
    no webhook may carry."""
    return json.dumps(
        {
            "specversion": SPEC_VERSION,
            "id": str(event.id),
            "source": f"/govsocial/{event.source}",
            "type": event.type,
            "subject": event.subject,
            "time": event.time.isoformat(),
            "datacontenttype": "application/json",
            "data": webhook_data(event.type, event.data),
        },
        separators=(",", ":"),
    )


# Built once: every event the service receives runs it (decision 0049).
_ACTIVE = select(WebhookEndpoint).where(col(WebhookEndpoint.active).is_(True))


async def _active(session: AsyncSession) -> list[WebhookEndpoint]:
    """The active endpoints, read once for every event of a delivery (``delivery_scope``;
    decision 0050): an endpoint registered while a delivery is applied receives the events of
    the next one, which is what it would get had it come a moment later."""
    scope = delivery_scope(session)
    endpoints: list[WebhookEndpoint] | None = scope.get("webhook_endpoints")
    if endpoints is None:
        endpoints = list((await session.scalars(_ACTIVE)).all())
        scope["webhook_endpoints"] = endpoints
    return endpoints


async def enqueue(session: AsyncSession, event: EventIn) -> None:
    """The receiver's handler for every event: one delivery per interested endpoint, in the
    receiver's transaction. Idempotent: the deliveries are keyed by endpoint and event, so an
    event applied again adds none (decision 0045). An event the catalogue does not vouch for is
    logged and sent nowhere: a payload that was not checked could carry what a subscriber may
    not read, and retrying it would hold up every later event. An ``internal.*`` event, which no
    endpoint receives (``wants``), costs no statement: a post sends identity one of each."""
    if event.type.startswith(INTERNAL_PREFIX):
        return
    endpoints = [endpoint for endpoint in await _active(session) if wants(endpoint, event)]
    if not endpoints:
        return
    try:
        payload = cloud_event(event)
    except NotCatalogued:
        log.warning("event type %s is not in the catalogue of public events: no webhook sent", event.type)
        return
    except ValidationError as exc:
        log.error(
            "event %s (%s) does not fit its catalogued model: no webhook sent: %s", event.id, event.type, exc
        )
        return
    for endpoint in endpoints:
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


# A relay pass serves each endpoint with due deliveries (round-robin, in turns of at most
# ENDPOINTS_PER_PASS), sends at most SENDS_PER_ENDPOINT deliveries to each, one at a time,
# and ends an endpoint's turn at its first failure or once the turn has lasted one request
# timeout: a slow or failing receiver delays only itself, and a pass lasts at most about two
# timeouts. PARALLEL_ENDPOINTS endpoints are served at once (each holds a database
# connection while it is served).
ENDPOINTS_PER_PASS = 100
SENDS_PER_ENDPOINT = 10
PARALLEL_ENDPOINTS = 4
# Pending deliveries read per endpoint to find those due whose resource has no earlier one
# still pending.
LOOKAHEAD = 100
REVOKED = "the client was revoked"


def _owner_revoked() -> Any:
    """Endpoints owned by a revoked integrator client."""
    return exists().where(
        col(Client.revoked_at).is_not(None), literal("client:") + col(Client.id) == col(WebhookEndpoint.owner)
    )


class WebhookRelay:
    """Sends due deliveries; one per process, like the outbox relay, and safe with replicas: on
    PostgreSQL an endpoint is served by one replica at a time (its row is locked FOR NO KEY
    UPDATE SKIP LOCKED while it is served), which also keeps the order of events about one
    resource."""

    def __init__(self, database: Database, settings: IdentitySettings, client: httpx.AsyncClient) -> None:
        self.database = database
        self.settings = settings
        self.client = client
        self.stopping = asyncio.Event()
        self._after: uuid.UUID | None = None  # the last endpoint served: where the next turn starts
        self._slots = asyncio.Semaphore(PARALLEL_ENDPOINTS)

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

    async def deliver_once(self) -> int:
        """One pass; returns how many deliveries arrived."""
        now = utcnow()
        endpoints = await self._due_endpoints(now)
        results = await asyncio.gather(
            *(self._serve(endpoint_id, now) for endpoint_id in endpoints), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                log.error("serving a webhook endpoint failed", exc_info=result)
        return sum(r for r in results if isinstance(r, int))

    async def _due_endpoints(self, now: datetime) -> list[uuid.UUID]:
        query = (
            select(col(WebhookDelivery.endpoint_id))
            .join(WebhookEndpoint, col(WebhookEndpoint.id) == WebhookDelivery.endpoint_id)
            .where(
                col(WebhookDelivery.status) == PENDING,
                col(WebhookDelivery.next_attempt_at) <= now,
                col(WebhookEndpoint.active).is_(True),
                ~_owner_revoked(),
            )
            .distinct()
        )
        async with self.database.read_sessionmaker() as session:
            due = sorted((await session.scalars(query)).all())
        if self._after is not None:
            due = [e for e in due if e > self._after] + [e for e in due if e <= self._after]
        turn = due[:ENDPOINTS_PER_PASS]
        if turn:
            self._after = turn[-1]
        return turn

    async def _serve(self, endpoint_id: uuid.UUID, now: datetime) -> int:
        async with self._slots, self.database.sessionmaker() as session, session.begin():
            query = select(WebhookEndpoint).where(
                col(WebhookEndpoint.id) == endpoint_id,
                col(WebhookEndpoint.active).is_(True),
                ~_owner_revoked(),
            )
            pending = (
                select(WebhookDelivery)
                .where(
                    col(WebhookDelivery.endpoint_id) == endpoint_id, col(WebhookDelivery.status) == PENDING
                )
                .order_by(col(WebhookDelivery.id))
                .limit(LOOKAHEAD)
            )
            if self.database.is_postgres:
                query = query.with_for_update(skip_locked=True, key_share=True)
                pending = pending.with_for_update()
            endpoint = await session.scalar(query)
            if endpoint is None:
                return 0  # gone, disabled, revoked, or being served by another replica
            blocked: set[str] = set()
            attempts = sent = 0
            ends = time.monotonic() + self.settings.webhook_timeout_seconds
            for delivery in (await session.scalars(pending)).all():
                if attempts == SENDS_PER_ENDPOINT or (attempts and time.monotonic() >= ends):
                    break
                if delivery.subject in blocked:
                    continue
                if delivery.next_attempt_at > now:
                    blocked.add(delivery.subject)  # keeps the order of events about one resource
                    continue
                attempts += 1
                if not await self._send(delivery, endpoint):
                    break
                sent += 1
        return sent

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
        error: str | None
        if problem := url_problem(endpoint.url, self.settings):
            error = f"refused: the URL {problem}"
        else:
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
                refused = exc.__cause__ if isinstance(exc.__cause__, AddressRefused) else None
                error = f"refused: {refused}"[:300] if refused else type(exc).__name__
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


async def disable_client_endpoints(session: AsyncSession, client_id: str) -> None:
    """A revoked client's endpoints stop at once: disabled, and what they had pending is
    marked failed, never sent."""
    owner = f"client:{client_id}"
    endpoints = select(col(WebhookEndpoint.id)).where(col(WebhookEndpoint.owner) == owner)
    await session.execute(
        update(WebhookEndpoint)
        .where(col(WebhookEndpoint.owner) == owner, col(WebhookEndpoint.active).is_(True))
        .values(active=False, updated_at=utcnow())
    )
    await session.execute(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.endpoint_id).in_(endpoints), col(WebhookDelivery.status) == PENDING)
        .values(status=FAILED, last_error=REVOKED)
    )


async def client_revoked(session: AsyncSession, owner: str) -> bool:
    """Whether an endpoint's owner is an integrator client that has been revoked."""
    if not owner.startswith("client:"):
        return False
    client = await session.get(Client, owner.removeprefix("client:"))
    return client is None or client.revoked_at is not None


async def redeliver(session: AsyncSession, delivery: WebhookDelivery) -> None:
    await session.execute(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.id) == delivery.id)
        .values(status=PENDING, attempt_count=0, next_attempt_at=utcnow(), last_error=None)
    )
