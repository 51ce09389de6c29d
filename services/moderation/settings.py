"""Moderation's settings, read from ``MODERATION_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from domain.settings import PersonaReplicaSettings


class ModerationSettings(PersonaReplicaSettings):
    model_config = SettingsConfigDict(env_prefix="MODERATION_", extra="ignore", env_nested_delimiter="__")

    service_name: str = "moderation"
    port: int = 8004
    database_url: str = "sqlite+aiosqlite:///var/moderation.db"
    feed_url: str = Field(
        default="http://127.0.0.1:8002", description="Feed, asked at filing whether the reporter sees a post."
    )
    groups_url: str = Field(
        default="http://127.0.0.1:8003",
        description="Groups, asked at filing whether the reporter sees a group.",
    )
    reports_per_hour: int = Field(default=20, ge=1, description="Reports one persona may file in any hour.")
    appeal_days: int = Field(
        default=30, ge=1, description="How long after a notice its persona may appeal it."
    )
    record_days: int = Field(
        default=730, ge=1, description="How long the evidence and actions of a resolved report are kept."
    )
    dismissed_days: int = Field(
        default=90, ge=1, description="How long the evidence of a report resolved with no action is kept."
    )
    lookup_timeout_seconds: float = Field(
        default=3.0, gt=0, le=30, description="How long filing waits for the content's owner to answer."
    )
