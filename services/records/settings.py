"""Records' settings, read from ``RECORDS_*`` environment variables (decision 0033)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from domain.settings import PersonaReplicaSettings


class RecordsSettings(PersonaReplicaSettings):
    model_config = SettingsConfigDict(env_prefix="RECORDS_", extra="ignore", env_nested_delimiter="__")

    service_name: str = "records"
    port: int = 8005
    database_url: str = "sqlite+aiosqlite:///var/records.db"
    identity_url: str = Field(
        default="http://127.0.0.1:8001",
        description="Identity, asked to resolve custodians and a persona's sibling.",
    )
    feed_url: str = Field(
        default="http://127.0.0.1:8002", description="Feed, asked for a persona's notifications."
    )
    media_url: str = Field(
        default="http://127.0.0.1:8006", description="Media, asked for the bytes of an export's media."
    )
    export_dir: str = Field(default="var/exports", description="Where export packages are written.")
    link_minutes: int = Field(default=15, ge=1, le=1440, description="How long a download link is valid.")
    export_days: int = Field(
        default=30, ge=1, description="How long an export package is kept before it is deleted."
    )
    disposition_interval_seconds: float = Field(default=3600, gt=0, description="How often disposition runs.")
    disposition_batch: int = Field(
        default=500, ge=1, le=5000, description="Items destroyed per transaction by disposition."
    )
    export_max_items: int = Field(default=2_000_000, ge=1, description="The most items one export may hold.")
    export_media_max_bytes: int = Field(
        default=1 << 30,
        ge=1,
        description="A media file longer than this is listed as missing in an export, not copied into it.",
    )
    export_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the export worker looks for queued jobs."
    )
    lease_seconds: float = Field(
        default=60, gt=0, description="How long a worker's lease on an export lasts without renewal."
    )
    call_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="How long a call to identity, feed or media may take (each read of a file's bytes).",
    )
