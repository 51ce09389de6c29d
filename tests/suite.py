"""The whole suite in one process: the five services and the gateway wired together through
httpx ASGI transports (no sockets), each service on its own database."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
from fastapi import FastAPI

from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from kit.settings import Subscriber
from launcher.topology import SUBSCRIPTIONS, subscribers
from services.feed.app import create_app as create_feed
from services.feed.settings import FeedSettings
from services.groups.app import create_app as create_groups
from services.groups.settings import GroupsSettings
from services.identity.app import create_app as create_identity
from services.identity.keys import KeyRing, SigningKey
from services.identity.settings import IdentitySettings
from services.media.app import create_app as create_media
from services.media.settings import MediaSettings
from services.moderation.app import create_app as create_moderation
from services.moderation.settings import ModerationSettings
from services.records.app import create_app as create_records
from services.records.settings import RecordsSettings

ISSUER = "http://identity"
AUDIENCE = "govsocial-api"
_KEY = SigningKey.generate()  # one RSA key per test run: generating one costs ~50 ms

# Who receives which events is the launcher's one definition; in process each service is
# reached at http://<name>, the host HostRouter sends to its app.
SUBSCRIBERS: dict[str, list[Subscriber]] = {
    publisher: [Subscriber(**fields) for fields in subscribers(publisher, lambda name: f"http://{name}")]
    for publisher in SUBSCRIPTIONS
}


def _no_cookies() -> CookieJar:
    return CookieJar(DefaultCookiePolicy(allowed_domains=[]))


class HostRouter(httpx.AsyncBaseTransport):
    """Sends each request to the app named by its host, as DNS would to a process."""

    def __init__(self) -> None:
        self.apps: dict[str, httpx.ASGITransport] = {}
        self.down: set[str] = set()

    def mount(self, host: str, app: FastAPI) -> None:
        self.apps[host] = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host in self.down or host not in self.apps:
            raise httpx.ConnectError(f"connection refused: {host}", request=request)
        return await self.apps[host].handle_async_request(request)


def service_settings(urls: Mapping[str, str], token: str, **overrides: Any) -> dict[str, dict[str, Any]]:
    common: dict[str, Any] = {
        "internal_token": token,
        "token_issuer": ISSUER,
        "token_audience": AUDIENCE,
        "jwks_url": f"{ISSUER}/.well-known/jwks.json",
        "relay_enabled": False,
        "log_json": True,
    }
    return {
        name: {
            **common,
            "database_url": urls[name],
            "subscribers": SUBSCRIBERS[name],
            **({"media_url": "http://media"} if name in MEDIA_CALLERS else {}),
            **({"groups_url": "http://groups"} if name == "feed" else {}),
            **overrides.get(name, {}),
        }
        for name in ("identity", "feed", "groups", "moderation", "records", "media")
    }


# Where each service that calls media finds it in the suite (decision 0036).
MEDIA_CALLERS = ("identity", "feed", "groups", "records")


@dataclass
class Suite:
    identity: FastAPI
    feed: FastAPI
    groups: FastAPI
    moderation: FastAPI
    records: FastAPI
    media: FastAPI
    gateway: FastAPI
    router: HostRouter
    client: httpx.AsyncClient
    keys: KeyRing
    services: dict[str, FastAPI] = field(default_factory=dict)

    async def deliver(self, rounds: int = 10) -> int:
        """Run every relay until nothing is left to deliver; returns how many were sent."""
        total = 0
        for _ in range(rounds):
            sent = 0
            for app in (self.identity, self.groups, self.feed, self.moderation, self.records, self.media):
                sent += await app.state.relay.deliver_once()
            total += sent
            if not sent:
                break
        return total


async def _stop_relays(*apps: FastAPI) -> None:
    """Every relay stops before any database closes, as separate processes would."""
    for app in apps:
        app.state.relay.stopping.set()
    for app in apps:
        if app.state.relay_task is not None:
            await app.state.relay_task


@contextlib.asynccontextmanager
async def build_suite(urls: Mapping[str, str], **overrides: Any) -> AsyncIterator[Suite]:
    token = secrets.token_urlsafe(24)
    settings = service_settings(urls, token, **overrides)
    router = HostRouter()
    # Like the gateway's aiohttp pools in production (gateway/upstream.py), the client it
    # forwards with here keeps no cookies: one jar would hand one browser's to every other.
    internal = httpx.AsyncClient(transport=router, timeout=5, cookies=_no_cookies())
    keys = KeyRing([_KEY])
    export_dir = tempfile.mkdtemp(prefix="records-exports-")
    identity = create_identity(
        IdentitySettings(
            **settings["identity"],
            password_time_cost=1,
            password_memory_cost=1024,
            password_parallelism=1,
            password_min_length=12,
        ),
        keys=keys,
        http_client=internal,
    )
    feed = create_feed(FeedSettings(**settings["feed"]), http_client=internal)
    groups = create_groups(GroupsSettings(**settings["groups"]), http_client=internal)
    moderation = create_moderation(
        ModerationSettings(
            **{"feed_url": "http://feed", "groups_url": "http://groups", **settings["moderation"]}
        ),
        http_client=internal,
    )
    records = create_records(
        RecordsSettings(
            **{
                "identity_url": "http://identity",
                "feed_url": "http://feed",
                "export_dir": str(export_dir),
                **settings["records"],
            }
        ),
        http_client=internal,
    )
    media_dir = tempfile.mkdtemp(prefix="media-")
    media = create_media(
        MediaSettings(
            **{
                "feed_url": "http://feed",
                "groups_url": "http://groups",
                "identity_url": "http://identity",
                "media_dir": media_dir,
                **settings["media"],
            }
        ),
        http_client=internal,
    )
    gateway = create_gateway(
        GatewaySettings(
            identity_url="http://identity",
            feed_url="http://feed",
            groups_url="http://groups",
            moderation_url="http://moderation",
            records_url="http://records",
            media_url="http://media",
            token_issuer=ISSUER,
            token_audience=AUDIENCE,
            # The warm-up would merge six documents two seconds into any longer test, seconds
            # of CPU on this event loop that every service shares; tests ask for the document.
            **{"openapi_warm_up": False, **overrides.get("gateway", {})},
        ),
        http_client=internal,
    )
    services = {
        "identity": identity,
        "feed": feed,
        "groups": groups,
        "moderation": moderation,
        "records": records,
        "media": media,
    }
    for host, app in (*services.items(), ("gateway", gateway)):
        router.mount(host, app)
    async with contextlib.AsyncExitStack() as stack:
        for app in (*services.values(), gateway):
            await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=router, base_url="http://gateway")
        )
        await stack.enter_async_context(internal)
        stack.callback(shutil.rmtree, export_dir, ignore_errors=True)
        stack.callback(shutil.rmtree, media_dir, ignore_errors=True)
        stack.push_async_callback(_stop_relays, *services.values())
        yield Suite(
            identity=identity,
            feed=feed,
            groups=groups,
            moderation=moderation,
            records=records,
            media=media,
            gateway=gateway,
            router=router,
            client=client,
            keys=keys,
            services=services,
        )
