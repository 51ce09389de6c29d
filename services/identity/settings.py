"""Identity's settings, read from ``IDENTITY_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings
from services.identity.schemas import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore", env_nested_delimiter="__")

    service_name: str = "identity"
    port: int = 8001
    database_url: str = "sqlite+aiosqlite:///var/identity.db"
    registration: Literal["open", "domains", "closed"] = "open"
    allowed_email_domains: list[str] = Field(default_factory=list)
    password_min_length: int = Field(default=PASSWORD_MIN_LENGTH, ge=PASSWORD_MIN_LENGTH, le=64)
    password_max_length: int = Field(default=PASSWORD_MAX_LENGTH, ge=64, le=PASSWORD_MAX_LENGTH)
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_cost: int = Field(default=65536, ge=8)
    password_parallelism: int = Field(default=4, ge=1)
    access_token_seconds: int = Field(default=300, ge=30, le=3600)
    refresh_token_seconds: int = Field(default=30 * 24 * 3600, ge=300)
    login_failures_per_account: int = Field(
        default=5, ge=1, description="Failures before the account name locks."
    )
    login_failures_per_address: int = Field(
        default=30, ge=1, description="Failures before a client address locks."
    )
    login_window_seconds: int = Field(default=900, ge=1)
    login_lock_seconds: int = Field(
        default=30, ge=1, description="First lock; doubles with each further failure."
    )
    login_max_lock_seconds: int = Field(default=900, ge=1)
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="Peers whose X-Forwarded-For is believed (the gateway): addresses or networks, "
        "such as the pod network the gateway runs in.",
    )
    unlink_delay_seconds: tuple[int, int] = Field(
        default=(3600, 43200),
        description="A personal persona's deactivation reaches other services after a random delay in "
        "this range, so that it cannot be matched with its professional twin's.",
    )
    oidc_issuer: str | None = Field(default=None, description="Trusted external OpenID Connect issuer.")
    oidc_jwks_url: str | None = None
    oidc_audience: str | None = Field(default=None, description="Our client id at the external provider.")
    oidc_link_claim: str = Field(default="email", description="The ID-token claim that names the account.")
    oidc_algorithms: list[str] = Field(default_factory=lambda: ["RS256"])
    webhook_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="When set, webhook URLs must name one of these hosts; when empty, any public host.",
    )
    webhook_allow_http: bool = Field(
        default=False, description="Allow http:// webhook URLs (development only)."
    )
    webhook_max_attempts: int = Field(default=8, ge=1, le=30)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_max_backoff_seconds: float = Field(default=3600.0, gt=0)
    webhook_relay_interval_seconds: float = Field(default=1.0, gt=0)
    signing_key_dir: Path | None = Field(
        default=None,
        description="Folder of PEM private keys; the newest is the active one, the others are "
        "still published so their tokens verify until they expire. Generated when empty.",
    )
