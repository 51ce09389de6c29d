"""Feed's settings, read from ``FEED_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from domain.settings import PersonaReplicaSettings


class FeedSettings(PersonaReplicaSettings):
    model_config = SettingsConfigDict(env_prefix="FEED_", extra="ignore", env_nested_delimiter="__")

    service_name: str = "feed"
    port: int = 8002
    database_url: str = "sqlite+aiosqlite:///var/feed.db"
    stream_poll_seconds: float = Field(
        default=2.0, gt=0, le=60, description="How often an open event stream looks for news."
    )
    stream_max_seconds: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="An event stream ends after this long (or when its token expires); clients "
        "reconnect with Last-Event-ID and miss nothing.",
    )
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0, le=300)
    stream_max_per_persona: int = Field(
        default=5,
        ge=1,
        description="Event streams one persona may hold open in one process; one more gets 429 with "
        "Retry-After.",
    )
    stream_ticket_seconds: int = Field(
        default=30,
        ge=1,
        le=300,
        description="How long a stream ticket (POST /api/v1/stream/tickets) may wait to be used, once; "
        "never past the expiry of the token it was asked with.",
    )
    media_url: str = Field(
        default="http://127.0.0.1:8006",
        description="The media service, which attaches uploads to posts and comments (decision 0036).",
    )
    media_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="How long a post or comment waits for media to attach its files; past it the "
        "create is a 503 with Retry-After and nothing is written.",
    )
    groups_url: str = Field(
        default="http://127.0.0.1:8003",
        description="The groups service, asked for a group and the caller's membership when feed's "
        "replicas do not have them yet (read-your-writes, ``services.feed.replicas``).",
    )
    groups_timeout_seconds: float = Field(
        default=0.5,
        gt=0,
        le=5,
        description="How long a post to a group, or a read of its timeline, waits for groups on such "
        "a miss; past it, feed answers from its replicas alone (404 or 403) and logs it.",
    )
    max_following: int = Field(default=5000, ge=1, description="How many personas one persona may follow.")
    home_inbox_size: int = Field(
        default=800,
        ge=1,
        le=10000,
        description="PostgreSQL: how many posts a reader's home inbox is built with (decision 0012); "
        "pages below them are read on demand.",
    )
    home_inbox_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 30,
        description="PostgreSQL: a home inbox is deleted this long after it was built, and built "
        "again at its reader's next read.",
    )
