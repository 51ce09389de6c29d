"""Gateway settings, read from ``GATEWAY_*`` environment variables.

Rate limits are JSON per route group, e.g.
``GATEWAY_RATE_LIMITS='{"auth": {"per_address": 10}}'``; a group left out keeps its default.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from kit.settings import BaseProcessSettings


class RateLimitRule(BaseModel):
    """Requests allowed per window: per token subject (a persona or a client) and per client
    address. ``None`` leaves that partition unlimited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_token: int | None = Field(default=None, ge=1)
    per_address: int | None = Field(default=None, ge=1)
    window_seconds: int = Field(default=60, ge=1, le=86_400)


DEFAULT_RATE_LIMITS: dict[str, RateLimitRule] = {
    "auth": RateLimitRule(per_address=20),
    # the sign-in pages: a sign-in is four to six page requests, and an office may share one
    # address; the password tries themselves are throttled by identity (decision 0019)
    "signin": RateLimitRule(per_address=120),
    "default": RateLimitRule(per_token=600, per_address=1200),
}

# path prefix -> route group; a path in no listed prefix is in "default"
DEFAULT_RATE_LIMIT_ROUTES: dict[str, str] = {"/api/v1/auth/": "auth", "/oauth/": "signin"}


class GatewaySettings(BaseProcessSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", env_nested_delimiter="__")

    port: int = 8000
    identity_url: str = "http://127.0.0.1:8001"
    feed_url: str = "http://127.0.0.1:8002"
    groups_url: str = "http://127.0.0.1:8003"
    moderation_url: str = "http://127.0.0.1:8004"
    records_url: str = "http://127.0.0.1:8005"
    media_url: str = "http://127.0.0.1:8006"

    upstream_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long an upstream may take to start answering."
    )
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    upstream_max_connections: int = Field(default=200, ge=1, description="Per upstream service.")
    upstream_keepalive_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How long an idle upstream connection is kept: below the services' own keep-alive "
        "(uvicorn's --timeout-keep-alive, 5 s here), so the gateway never reuses one the service closed.",
    )
    upstream_max_response_bytes: int = Field(
        default=10_000_000, ge=1024, description="Larger upstream answers become a 502."
    )
    upstream_max_download_bytes: int = Field(
        default=20 * 1024**3,
        ge=1024,
        description="The largest download (an export package) passed through, streamed; larger is cut.",
    )
    upload_max_bytes: int = Field(
        default=26_000_000,
        ge=1024,
        description="The largest upload body (`POST /api/v1/media`), streamed to media rather than read "
        "whole: media's largest file (25 MB) and its multipart envelope. Larger is a 413, before "
        "anything is forwarded when Content-Length says so, else as soon as the body passes it.",
    )
    stream_idle_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Server-sent event streams are cut after this long without a byte; none by default.",
    )

    cors_origins: list[str] = Field(default_factory=list)
    cors_max_age_seconds: int = Field(default=600, ge=0)

    rate_limit_enabled: bool = True
    rate_limits: dict[str, RateLimitRule] = Field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    rate_limit_routes: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_RATE_LIMIT_ROUTES))
    redis_url: str | None = Field(
        default=None, description="Shares rate-limit budgets between replicas; in memory when unset."
    )
    redis_key_prefix: str = "govsocial:ratelimit:"
    redis_timeout_seconds: float = Field(default=0.5, gt=0)
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks of proxies whose X-Forwarded-For names the client.",
    )
    trusted_proxy_hops: int | None = Field(
        default=1,
        ge=1,
        description="How many proxies stand in front (each appends one X-Forwarded-For entry): no more "
        "entries than this are read, so clients inside a trusted network cannot add their own. "
        "Null reads every entry up to the first untrusted one.",
    )
    client_address_secret: SecretStr | None = Field(
        default=None,
        description="Shared with identity: the client's address goes upstream signed with it "
        "(X-Client-Address), which identity believes from no one else.",
    )

    openapi_cache_seconds: float = Field(default=60.0, ge=0)
    openapi_warm_up: bool = Field(
        default=True,
        description="Learn the route templates (metrics labels) in the background from startup on; "
        "off, they are learned when the document (GET /openapi.json) is first asked for.",
    )
    docs_enabled: bool = True
    metrics_enabled: bool = True
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Where the metrics listener binds: loopback by default; 0.0.0.0 in a container whose "
        "metrics port only the monitoring network reaches.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="The port that serves GET /metrics, apart from the public port (which never does); "
        "none by default, 0 for any free port.",
    )

    @field_validator("rate_limits", mode="after")
    @classmethod
    def _keep_default_groups(cls, value: dict[str, RateLimitRule]) -> dict[str, RateLimitRule]:
        return {**DEFAULT_RATE_LIMITS, **value}

    @field_validator("cors_origins", mode="after")
    @classmethod
    def _no_trailing_slash(cls, value: list[str]) -> list[str]:
        return [origin.rstrip("/") for origin in value]

    def rate_limit_group(self, path: str) -> str:
        best: tuple[int, str] = (-1, "default")
        for prefix, group in self.rate_limit_routes.items():
            if path.startswith(prefix) and len(prefix) > best[0]:
                best = (len(prefix), group)
        return best[1]

    @model_validator(mode="after")
    def _routes_name_known_groups(self) -> Self:
        unknown = set(self.rate_limit_routes.values()) - set(self.rate_limits)
        if unknown:
            raise ValueError(f"rate_limit_routes names groups without limits: {sorted(unknown)}")
        return self
