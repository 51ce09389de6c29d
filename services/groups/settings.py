"""Groups' settings, read from ``GROUPS_*`` environment variables."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class GroupsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GROUPS_", extra="ignore", env_nested_delimiter="__")

    service_name: str = "groups"
    port: int = 8003
    database_url: str = "sqlite+aiosqlite:///var/groups.db"
    joins_per_hour: int = Field(
        default=100, ge=1, description="Joins and join requests one persona may make in an hour."
    )


def _settings(request: Request) -> GroupsSettings:
    settings: GroupsSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[GroupsSettings, Depends(_settings)]
