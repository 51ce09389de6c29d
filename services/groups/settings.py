"""Groups' settings, read from ``GROUPS_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from domain.settings import PersonaReplicaSettings


class GroupsSettings(PersonaReplicaSettings):
    model_config = SettingsConfigDict(env_prefix="GROUPS_", extra="ignore", env_nested_delimiter="__")

    service_name: str = "groups"
    port: int = 8003
    database_url: str = "sqlite+aiosqlite:///var/groups.db"
    joins_per_hour: int = Field(
        default=100, ge=1, description="Joins and join requests one persona may make in an hour."
    )
    media_url: str = Field(
        default="http://127.0.0.1:8006",
        description="The media service, which keeps groups' images (decision 0036); reached with the "
        "internal token.",
    )
    media_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="How long a call to media may take before it counts as down."
    )
