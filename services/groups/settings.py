"""Groups' settings, read from ``GROUPS_*`` environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class GroupsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GROUPS_", extra="ignore", env_nested_delimiter="__")

    service_name: str = "groups"
    port: int = 8003
    database_url: str = "sqlite+aiosqlite:///var/groups.db"
