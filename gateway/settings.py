"""Gateway settings, read from ``GATEWAY_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kit.settings import BaseProcessSettings


class GatewaySettings(BaseProcessSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", env_nested_delimiter="__")

    port: int = 8000
    identity_url: str = "http://127.0.0.1:8001"
    feed_url: str = "http://127.0.0.1:8002"
    groups_url: str = "http://127.0.0.1:8003"
    upstream_timeout_seconds: float = Field(default=10.0, gt=0)
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    upstream_max_connections: int = Field(default=200, ge=1)
    cors_origins: list[str] = Field(default_factory=list)
