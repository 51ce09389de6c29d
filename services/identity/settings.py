"""Identity's settings, read from ``IDENTITY_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
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
        default=5,
        ge=1,
        description="Failures of one account name from one client address before that pair locks.",
    )
    login_failures_per_account_all_addresses: int = Field(
        default=50,
        ge=1,
        description="Failures of one account name from any addresses before the account itself locks "
        "(a distributed attack); while it is locked every attempt is answered as a wrong password.",
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
        description="Peers whose X-Forwarded-For is believed (the gateway, which writes one entry): "
        "addresses or networks that hold no clients. Where the gateway's address is not known in "
        "advance, use client_address_secret instead.",
    )
    client_address_secret: SecretStr | None = Field(
        default=None,
        description="Shared with the gateway, which signs the client's address with it (X-Client-Address); "
        "when set, only that header names the client and X-Forwarded-For is ignored.",
    )
    unlink_delay_seconds: tuple[int, int] = Field(
        default=(3600, 43200),
        description="An account's suspension, reactivation or deactivation reaches its personal persona "
        "after a random delay in this range (seconds), so that it cannot be matched with its "
        "professional twin's.",
    )
    pending_status_interval_seconds: float = Field(
        default=15, gt=0, description="How often delayed persona statuses that are due are applied."
    )
    disposal_interval_seconds: float = Field(
        default=60, gt=0, description="How often the disposals records asked for are carried out."
    )
    disposal_batch: int = Field(
        default=1000, ge=1, le=10_000, description="Rows deleted per transaction by a disposal."
    )
    oidc_issuer: str | None = Field(default=None, description="Trusted external OpenID Connect issuer.")
    oidc_jwks_url: str | None = None
    oidc_audience: str | None = Field(default=None, description="Our client id at the external provider.")
    oidc_link_claim: str = Field(default="email", description="The ID-token claim that names the account.")
    oidc_algorithms: list[str] = Field(default_factory=lambda: ["RS256"])
    oidc_authorization_url: str | None = Field(
        default=None,
        description="The provider's authorization endpoint: with it (and oidc_token_url and "
        'oidc_client_secret) the sign-in page offers "continue with the agency\'s sign-on".',
    )
    oidc_token_url: str | None = Field(default=None, description="The provider's token endpoint.")
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="Our client secret at the provider; set it through the environment."
    )
    password_grant: bool = Field(
        default=True,
        description="Whether the token endpoint accepts grant_type=password (scripts and tests). Apps "
        "sign in with the authorization-code flow, which stays open either way.",
    )
    authorization_code_seconds: int = Field(default=60, ge=10, le=600)
    signin_session_seconds: int = Field(
        default=12 * 3600,
        ge=300,
        le=30 * 24 * 3600,
        description="How long a browser stays signed in at the authorization endpoint.",
    )
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
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="The address clients reach the suite at (the gateway's, e.g. https://social.agency.gov): "
        "SCIM names its resources under it. Unset, they are named by relative references; never by "
        "the address a request reached identity at, which is internal.",
    )
    smtp_host: str | None = Field(
        default=None,
        description="The mail server that sends verification mails; without one they are written to "
        "the log (development only).",
    )
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="STARTTLS on a plain connection, TLS from the start, or none."
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = Field(default=None, description="Set it through the environment.")
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    mail_from: str = Field(default="govsocial <no-reply@localhost>", max_length=254)
    verification_link: str | None = Field(
        default=None,
        description="A page of the organisation's front end that asks for the password and completes a "
        "registration; {token} in it is replaced by the mailed token. Without it the mail gives the token "
        "and the API call.",
    )
    verification_token_seconds: int = Field(default=24 * 3600, ge=300, le=7 * 24 * 3600)
    verification_mails_per_hour: int = Field(
        default=3, ge=1, description="Registration mails to one address per hour; more are not sent."
    )
    media_url: str = Field(
        default="http://127.0.0.1:8006",
        description="The media service, which keeps avatars' files (decision 0036); reached with the "
        "internal token.",
    )
    media_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="How long a call to media may take before it counts as down."
    )

    @model_validator(mode="after")
    def _tokens_within_their_maximum_lifetime(self) -> IdentitySettings:
        if self.access_token_seconds > self.token_max_lifetime_seconds:
            raise ValueError(
                "access_token_seconds exceeds token_max_lifetime_seconds: every token would be refused."
            )
        return self
