"""Settings shared by every process; each service subclasses with its own env prefix."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Subscriber(BaseSettings):
    """A service that receives this service's events at ``url``."""

    name: str
    url: AnyHttpUrl
    event_types: list[str] = Field(default_factory=lambda: ["*"])
    only_with: list[str] = Field(
        default_factory=list,
        description="Fields an event's data must carry, not null, for this subscriber to receive "
        "it: groups keeps a history of group content only, so the feed sends it no other.",
    )


class BaseProcessSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", env_nested_delimiter="__")

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True
    max_body_size: int = Field(default=1_000_000, ge=1024)
    token_issuer: str = "http://127.0.0.1:8001"  # noqa: S105 - a URL, not a secret
    token_audience: str = "govsocial-api"  # noqa: S105 - a name, not a secret
    token_leeway_seconds: int = Field(default=30, ge=0, le=300)
    token_max_lifetime_seconds: int = Field(
        default=3600,
        ge=60,
        le=86400,
        description="An access token whose exp lies further than this after its iat is refused; at least "
        "the lifetime its issuer gives access tokens.",
    )
    jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    jwks_cache_seconds: int = Field(default=300, ge=1)


class ServiceSettings(BaseProcessSettings):
    service_name: str = "service"
    database_url: str = "sqlite+aiosqlite:///var/service.db"
    database_echo: bool = False
    database_pool_size: int = Field(
        default=20,
        ge=1,
        description="Connections kept per process (and as many more under load). A request that waits for a "
        "connection can be overtaken by later ones, so size it for the requests a process serves at once.",
    )
    internal_token: SecretStr = Field(
        description="Shared secret that authenticates event deliveries between services."
    )
    subscribers: list[Subscriber] = Field(default_factory=list)
    relay_enabled: bool = True
    relay_interval_seconds: float = Field(default=1.0, gt=0)
    relay_linger_seconds: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="How long the relay waits after a commit wakes it, so that the events of the "
        "commits in that time go to each subscriber in one request (decision 0050).",
    )
    relay_batch_size: int = Field(default=100, ge=1, le=1000)
    relay_timeout_seconds: float = Field(default=5.0, gt=0)
    relay_max_backoff_seconds: float = Field(default=60.0, gt=0)
    relay_max_attempts: int = Field(
        default=1500,  # kit.outbox.MAX_ATTEMPTS
        ge=1,
        description="Attempts after which a delivery is marked failed and waits for an operator "
        "(python -m kit.outbox retry): about 25 hours with the default back-off (decision 0022).",
    )
    housekeeping_interval_seconds: float = Field(
        default=600.0, gt=0, description="How often rows past their retention are deleted (kit.housekeeping)."
    )
    outbox_retention_days: float = Field(
        default=7.0, gt=0, description="How long events every subscriber has received are kept."
    )
    idempotency_key_retention_hours: float = Field(
        default=24.0,
        gt=0,
        description="How long a create's first answer is replayed for its Idempotency-Key.",
    )
    processed_event_retention_days: float = Field(
        default=30.0, gt=0, description="How long the ids of applied events are kept against redelivery."
    )
