"""Media's settings, read from ``MEDIA_*`` environment variables (decision 0036)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from domain.settings import PersonaReplicaSettings

DEFAULT_ALLOWED = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "application/pdf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "text/plain",
    "text/csv",
)


class MediaSettings(PersonaReplicaSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIA_", extra="ignore", env_nested_delimiter="__")

    service_name: str = "media"
    port: int = 8006
    database_url: str = "sqlite+aiosqlite:///var/media.db"
    # An upload's body is checked by the upload flow itself, as it streams (``max_file_bytes``);
    # this bounds every other body.
    max_body_size: int = Field(default=1_000_000, ge=1024)

    # Where the files are kept.
    storage: Literal["local", "s3"] = Field(
        default="local", description="`local` (files under `media_dir`) or `s3` (an S3-compatible store)."
    )
    media_dir: str = Field(default="var/media", description="The local store's folder.")
    spool_dir: str = Field(
        default="",
        description="Where an upload is written while it arrives and while it is processed "
        "(default: `<media_dir>/spool`). Local to the process, never shared.",
    )
    s3_endpoint_url: str = Field(default="", description="The S3-compatible store's address (empty: AWS).")
    s3_region: str = Field(default="us-east-1")
    s3_bucket: str = Field(default="media")
    s3_access_key_id: SecretStr = Field(default=SecretStr(""))
    s3_secret_access_key: SecretStr = Field(default=SecretStr(""))

    # Limits.
    max_file_bytes: int = Field(
        default=25_000_000, ge=1024, description="The largest file one upload may carry."
    )
    upload_envelope_bytes: int = Field(
        default=16_384,
        ge=4096,
        le=1_000_000,
        description="What an upload may carry besides the file: the multipart boundaries and part "
        "headers, and the description. A body longer than the file limit plus this is refused "
        "before it is read.",
    )
    quota_bytes: int = Field(
        default=1_000_000_000, ge=1024, description="The most bytes one persona's media may hold in all."
    )
    max_pixels: int = Field(
        default=50_000_000, ge=1, description="An image with more pixels is refused before it is decoded."
    )
    preview_pixels: int = Field(default=640, ge=16, le=4096, description="A preview's longest side.")
    allowed_types: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED),
        description="The content types accepted, as decided from the bytes; anything else is rejected.",
    )

    # Processing.
    worker_poll_seconds: float = Field(
        default=0.5, gt=0, description="How often the worker looks for uploads."
    )
    lease_seconds: float = Field(
        default=120, gt=0, description="How long a worker holds an upload before another may retry it."
    )
    max_attempts: int = Field(
        default=5, ge=1, description="Processing attempts before an upload is rejected."
    )
    clamd_address: str = Field(
        default="",
        description="`host:port` of a ClamAV daemon that scans each file before it is ready; empty: none.",
    )
    clamd_timeout_seconds: float = Field(default=30, gt=0)
    scan_retry_seconds: float = Field(
        default=30,
        gt=0,
        description="How long an upload waits before it is tried again when the ClamAV daemon did not "
        "answer (such a try does not count among `max_attempts`).",
    )
    sweep_interval_seconds: float = Field(
        default=300,
        gt=0,
        description="How often uploads never attached, rejected uploads and stored files no upload "
        "names are deleted.",
    )

    # Reading.
    url_key: SecretStr = Field(
        default=SecretStr(""),
        description="The key that signs file URLs (empty: derived from the internal token).",
    )
    url_seconds: int = Field(default=300, ge=10, le=3600, description="How long a signed file URL is valid.")
    unattached_hours: float = Field(
        default=24, gt=0, description="An upload never attached is deleted after this long."
    )
    feed_url: str = Field(
        default="http://127.0.0.1:8002", description="Feed, asked who sees a post or comment."
    )
    groups_url: str = Field(default="http://127.0.0.1:8003", description="Groups, asked who sees a group.")
    identity_url: str = Field(
        default="http://127.0.0.1:8001", description="Identity, asked who sees a persona."
    )
    lookup_timeout_seconds: float = Field(default=5, gt=0, le=60)
