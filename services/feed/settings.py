"""Feed's settings, read from ``FEED_*`` environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class FeedSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEED_", extra="ignore", env_nested_delimiter="__")

    service_name: str = "feed"
    port: int = 8002
    database_url: str = "sqlite+aiosqlite:///var/feed.db"
