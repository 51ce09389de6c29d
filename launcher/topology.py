"""Which process listens where, and which service receives which events."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SERVICES = ("identity", "feed", "groups", "moderation", "records", "media")
COMPONENTS = ("identity", "feed", "groups", "moderation", "records", "media", "gateway")
DEFAULT_PORTS = {
    "gateway": 8000,
    "identity": 8001,
    "feed": 8002,
    "groups": 8003,
    "moderation": 8004,
    "records": 8005,
    "media": 8006,
}
DEFAULT_METRICS_PORT = 8010
# The gateway's metrics listen on loopback whatever host the suite serves on: they are for
# whoever runs it, not for its clients.
METRICS_HOST = "127.0.0.1"
APPS = {
    "identity": "services.identity.app:create_app",
    "feed": "services.feed.app:create_app",
    "groups": "services.groups.app:create_app",
    "moderation": "services.moderation.app:create_app",
    "records": "services.records.app:create_app",
    "media": "services.media.app:create_app",
    "gateway": "gateway.app:create_app",
}

# publisher -> [(subscriber, event types)]
# Identity receives every public event (its own included) to fan them out to integrators'
# webhooks. Events named ``internal.*`` are between services only: identity never sends them to
# webhooks, and receives only those it acts on. ``internal.records.*`` carry content to records
# alone (decision 0033).
SUBSCRIPTIONS: dict[str, list[tuple[str, list[str]]]] = {
    "identity": [
        ("feed", ["persona.*"]),
        ("groups", ["persona.*"]),
        ("moderation", ["persona.*", "internal.staff.*"]),
        ("records", ["persona.*", "internal.staff.*"]),
        ("media", ["persona.*"]),
        ("identity", ["*"]),
    ],
    "groups": [
        ("feed", ["group.*", "membership.*"]),
        ("moderation", ["group.*", "membership.*"]),
        ("records", ["membership.*", "internal.records.*"]),
        ("media", ["group.deleted"]),
        ("identity", ["group.*", "membership.*"]),
    ],
    "feed": [
        (
            "groups",
            [
                "post.created",
                "post.deleted",
                "comment.created",
                "comment.deleted",
                "reaction.added",
                "reaction.removed",
            ],
        ),
        ("moderation", ["internal.content.*"]),
        ("records", ["internal.records.*"]),
        ("media", ["post.deleted", "post.restored", "comment.deleted", "comment.restored"]),
        ("identity", ["post.*", "comment.*", "reaction.*"]),
    ],
    "moderation": [
        (
            "feed",
            [
                "moderation.content.*",
                "moderation.post.*",
                "moderation.persona.limited",
                "moderation.persona.unlimited",
                "internal.moderation.terms",
            ],
        ),
        ("groups", ["moderation.group.*"]),
        ("identity", ["*"]),
    ],
    "records": [
        ("feed", ["internal.records.dispose"]),
        ("groups", ["internal.records.dispose"]),
        ("identity", ["internal.records.dispose"]),
        ("media", ["internal.records.dispose"]),
    ],
    # Media tells each owner what became of its attachments (an edited description), and
    # records what was attached (decision 0036).
    "media": [
        ("feed", ["internal.media.updated"]),
        ("groups", ["internal.media.updated"]),
        ("identity", ["internal.media.updated"]),
        ("records", ["internal.records.*"]),
    ],
}

# (publisher, subscriber) -> the fields an event's data must carry, not null, for the subscriber
# to receive it (kit.settings.Subscriber.only_with). Groups keeps the history of its groups'
# posts, comments and reactions, and nothing of content outside a group (decision 0044).
ONLY_WITH: dict[tuple[str, str], list[str]] = {("feed", "groups"): ["group_id"]}


def subscribers(publisher: str, url: Callable[[str], str]) -> list[dict[str, Any]]:
    """``publisher``'s subscribers as its ``*_SUBSCRIBERS`` setting lists them, each reached at
    ``url(name)``."""
    return [
        {
            "name": name,
            "url": url(name),
            "event_types": types,
            **({"only_with": ONLY_WITH[publisher, name]} if (publisher, name) in ONLY_WITH else {}),
        }
        for name, types in SUBSCRIPTIONS[publisher]
    ]


@dataclass(frozen=True)
class Layout:
    host: str
    ports: dict[str, int]
    metrics_port: int | None = None

    def url(self, component: str) -> str:
        return f"http://{self.host}:{self.ports[component]}"


def environment(layout: Layout, *, internal_token: str, var_dir: str) -> dict[str, str]:
    """Every variable the six processes need, each under its own prefix."""
    identity = layout.url("identity")
    env = {
        "GATEWAY_HOST": layout.host,
        "GATEWAY_PORT": str(layout.ports["gateway"]),
        "GATEWAY_IDENTITY_URL": identity,
        "GATEWAY_FEED_URL": layout.url("feed"),
        "GATEWAY_GROUPS_URL": layout.url("groups"),
        "GATEWAY_MODERATION_URL": layout.url("moderation"),
        "MODERATION_FEED_URL": layout.url("feed"),
        "MODERATION_GROUPS_URL": layout.url("groups"),
        "GATEWAY_RECORDS_URL": layout.url("records"),
        "RECORDS_IDENTITY_URL": identity,
        "RECORDS_FEED_URL": layout.url("feed"),
        "RECORDS_EXPORT_DIR": f"{var_dir}/exports",
        "GATEWAY_MEDIA_URL": layout.url("media"),
        "MEDIA_FEED_URL": layout.url("feed"),
        "MEDIA_GROUPS_URL": layout.url("groups"),
        "MEDIA_IDENTITY_URL": identity,
        "MEDIA_MEDIA_DIR": f"{var_dir}/media",
        "FEED_MEDIA_URL": layout.url("media"),
        "FEED_GROUPS_URL": layout.url("groups"),
        "GROUPS_MEDIA_URL": layout.url("media"),
        "IDENTITY_MEDIA_URL": layout.url("media"),
        "RECORDS_MEDIA_URL": layout.url("media"),
        "GATEWAY_TOKEN_ISSUER": identity,
        "IDENTITY_SIGNING_KEY_DIR": f"{var_dir}/keys",
        "IDENTITY_PUBLIC_URL": layout.url("gateway"),
    }
    if layout.metrics_port is not None:
        env["GATEWAY_METRICS_HOST"] = METRICS_HOST
        env["GATEWAY_METRICS_PORT"] = str(layout.metrics_port)
    for service in SERVICES:
        prefix = service.upper()
        env.update(
            {
                f"{prefix}_HOST": layout.host,
                f"{prefix}_PORT": str(layout.ports[service]),
                f"{prefix}_INTERNAL_TOKEN": internal_token,
                f"{prefix}_TOKEN_ISSUER": identity,
                f"{prefix}_JWKS_URL": f"{identity}/.well-known/jwks.json",
                f"{prefix}_SUBSCRIBERS": json.dumps(subscribers(service, layout.url)),
                f"{prefix}_DATABASE_URL": f"sqlite+aiosqlite:///{var_dir}/{service}.db",
            }
        )
    return env
