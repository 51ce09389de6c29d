"""Feed's settings, read from ``FEED_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class FeedSettings(ServiceSettings):
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
    max_following: int = Field(default=5000, ge=1, description="How many personas one persona may follow.")
