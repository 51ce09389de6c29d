"""Records' request and response models, and the mappers from rows (decision 0033).

Only officers read the shapes above the exports' line (``/api/v1/records/``). A hold's answer
names custodians' accounts with the personas identity resolved for them: the one place outside
identity's audited admin link where the two are seen together (docs/boundary.md), which is why
every call here is audited.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from kit.text import MultiLineText, SingleLineText, UtcDateTime
from services.records.classes import CLASSES, POST_CLASSES, ClassName
from services.records.models import AuditEntry, Disposition, Hold, HoldPersona, Matter

MAX_KEEP_DAYS = 36_500
MAX_OVERRIDES = 1000

CountedFrom = Literal["created", "last_activity"]
Then = Literal["dispose", "keep_forever"]
MatterStatus = Literal["open", "closed"]
HoldStatus = Literal["active", "released"]
DispositionStatus = Literal["running", "finished", "failed", "aborted"]
KeepDays = Annotated[
    int,
    Field(ge=0, le=MAX_KEEP_DAYS, strict=True, description="Days kept (0 to 36500); null: no limit."),
]
Reason = Annotated[
    str,
    Field(min_length=1, max_length=2000, description="Why, for the record (1 to 2000 characters)."),
    MultiLineText,
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rule(Strict):
    """What a policy (or a group's override of ``group_posts``) says."""

    keep_days: KeepDays | None = None
    counted_from: CountedFrom = Field(
        default="created",
        description="`last_activity` (a comment, a reaction, an edit) only for the classes of posts.",
    )
    then: Then = Field(default="keep_forever", description="`dispose` needs `keep_days`.")

    @model_validator(mode="after")
    def _dispose_needs_days(self) -> Rule:
        if self.then == "dispose" and self.keep_days is None:
            raise ValueError("a policy that disposes needs keep_days")
        return self


class PolicyIn(Rule):
    klass: ClassName = Field(alias="class", description="The retention class.")
    overrides: dict[uuid.UUID, Rule] = Field(
        default_factory=dict,
        max_length=MAX_OVERRIDES,
        description="`group_posts` only: a group's own rule, by group id (up to 1000).",
    )

    @model_validator(mode="after")
    def _fits_the_class(self) -> PolicyIn:
        if self.overrides and self.klass != "group_posts":
            raise ValueError("only group_posts has per-group overrides")
        if self.counted_from == "last_activity" and self.klass not in POST_CLASSES:
            raise ValueError(f"{self.klass} is counted from creation only")
        return self


class PolicyChange(Strict):
    version: int = Field(ge=0, strict=True, description="The version of the set this change was made from.")
    policies: list[PolicyIn] = Field(
        min_length=1, max_length=len(CLASSES), description="The classes to replace; the others stay."
    )
    acknowledge_holds: bool = Field(
        default=False,
        strict=True,
        description="Dispose although an active hold reaches past the cut-off (the hold still wins).",
    )

    @model_validator(mode="after")
    def _each_class_once(self) -> PolicyChange:
        named = [p.klass for p in self.policies]
        if len(set(named)) != len(named):
            raise ValueError("a class is named twice")
        return self


class RulePublic(BaseModel):
    keep_days: int | None
    counted_from: CountedFrom
    then: Then


class PolicyPublic(RulePublic):
    model_config = ConfigDict(populate_by_name=True)

    klass: ClassName = Field(alias="class")
    overrides: dict[str, RulePublic]
    updated_at: datetime | None = Field(description="Null: the default, never changed.")
    updated_by: uuid.UUID | None


class PolicySetPublic(BaseModel):
    version: int = Field(description="Send it back with a change: 409 `version-conflict` once it moved.")
    policies: list[PolicyPublic] = Field(description="Every class, in the order of decision 0033.")


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SingleLineText]
Reference = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    SingleLineText,
    Field(description="The matter's reference (a file number): unique."),
]
Term = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=2, max_length=100),
    SingleLineText,
    Field(description="2 to 100 characters, matched anywhere in any version's text, in any case."),
]


class MatterCreate(Strict):
    name: Name
    reference: Reference
    reason: Reason


class MatterClose(Strict):
    reason: Reason


class MatterPublic(BaseModel):
    id: uuid.UUID
    name: str
    reference: str
    reason: str
    status: MatterStatus
    created_by: uuid.UUID
    created_at: datetime
    closed_at: datetime | None
    closed_by: uuid.UUID | None
    close_reason: str | None


def matter_public(row: Matter) -> MatterPublic:
    return MatterPublic.model_validate(row, from_attributes=True)


class HoldCreate(Strict):
    custodians: list[uuid.UUID] = Field(
        default_factory=list, max_length=100, description="Account ids: identity resolves both personas."
    )
    group_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    date_from: UtcDateTime = Field(description="Items created from then on (a time without offset is UTC).")
    date_to: UtcDateTime | None = Field(
        default=None, description="Until then, when given: after `date_from`."
    )
    terms: list[Term] = Field(default_factory=list, max_length=50)

    @field_validator("custodians", "group_ids", "terms")
    @classmethod
    def _once_each(cls, values: list[Any]) -> list[Any]:
        return list(dict.fromkeys(values))

    @model_validator(mode="after")
    def _range(self) -> HoldCreate:
        if self.date_to is not None and self.date_to <= self.date_from:
            raise ValueError("date_to must be after date_from")
        return self


class HoldRelease(Strict):
    reason: Reason


class HoldPersonaPublic(BaseModel):
    persona_id: uuid.UUID
    account_id: uuid.UUID
    context: str


class HoldPublic(BaseModel):
    id: uuid.UUID
    matter_id: uuid.UUID
    custodians: list[uuid.UUID]
    personas: list[HoldPersonaPublic] = Field(
        description="The custodians' personas, as identity resolved them."
    )
    group_ids: list[uuid.UUID]
    date_from: datetime
    date_to: datetime | None
    terms: list[str]
    status: HoldStatus
    created_by: uuid.UUID
    created_at: datetime
    released_by: uuid.UUID | None
    released_at: datetime | None
    release_reason: str | None


def hold_public(row: Hold, personas: list[HoldPersona]) -> HoldPublic:
    return HoldPublic(
        id=row.id,
        matter_id=row.matter_id,
        custodians=[uuid.UUID(c) for c in row.custodians],
        personas=[HoldPersonaPublic.model_validate(p, from_attributes=True) for p in personas],
        group_ids=[uuid.UUID(g) for g in row.group_ids],
        date_from=row.date_from,
        date_to=row.date_to,
        terms=list(row.terms),
        status=row.status,
        created_by=row.created_by,
        created_at=row.created_at,
        released_by=row.released_by,
        released_at=row.released_at,
        release_reason=row.release_reason,
    )


class DispositionPublic(BaseModel):
    """A disposition certificate."""

    id: uuid.UUID
    status: DispositionStatus
    started_at: datetime
    finished_at: datetime | None
    started_by: uuid.UUID | None = Field(description="The officer who ran it; null for the scheduled run.")
    policies: dict[str, Any] = Field(description="The policy of every class when the run started.")
    cutoffs: dict[str, str] = Field(
        description="The cut-off of each class disposed of (`group_posts:<group id>` for a group's override)."
    )
    counts: dict[str, int] = Field(
        description="What was destroyed, by class: items (a post's comments and reactions counted in "
        "their own classes), earlier versions for `edit_history`, records' own audit entries and "
        "certificates for `audit_log`; and `media`: the files attached to what was destroyed."
    )
    held: list[str] = Field(
        description="Operational classes left alone because an active hold reaches past their cut-off."
    )
    digest: str = Field(
        description="SHA-256 (hex) of the ids destroyed (items, media, and versions as edit history), "
        "sorted as text and joined by line feeds."
    )


def disposition_public(row: Disposition) -> DispositionPublic:
    return DispositionPublic.model_validate(row, from_attributes=True)


class RecordsAuditEntryPublic(BaseModel):
    id: uuid.UUID
    at: datetime
    officer_id: uuid.UUID | None = Field(description="Null for the scheduled disposition.")
    action: str
    matter_id: uuid.UUID | None
    details: dict[str, Any]


def records_audit_entry_public(row: AuditEntry) -> RecordsAuditEntryPublic:
    return RecordsAuditEntryPublic.model_validate(row, from_attributes=True)


# --- policies, matters, holds, dispositions, audit (above this line) ---


# --- exports (below this line) ---

MAX_EXPIRES = 2**40  # a link's expiry, in Unix seconds: far past any real one
LinkExpires = Annotated[int, Query(ge=0, le=MAX_EXPIRES, description="From the download link.")]
LinkSignature = Annotated[
    str, Query(pattern="^[0-9a-f]{64}$", description="From the download link: a hex HMAC-SHA256.")
]

# Below the line, so that the two halves of this module are edited apart.
from typing import get_args  # noqa: E402

from services.records.classes import CONTENT_CLASSES, ContentClass  # noqa: E402
from services.records.models import Download, Export  # noqa: E402

ExportStatus = Literal["queued", "running", "ready", "failed", "expired"]
ExportContext = Literal["professional", "personal"]
ALL_CONTEXTS: tuple[ExportContext, ...] = ("professional", "personal")


class ExportCreate(Strict):
    """What a matter's export holds (decision 0033, "Exports"). An item is in it when its author
    is one of the custodians' personas or its group one of `group_ids`, it was created within
    `date_from`..`date_to`, it is of one of `contexts` and `classes`, and (with `terms`) some
    version of its text contains a term, in any case. The comments and reactions on such a post
    are in it too, whatever their author or date (as a hold covers them), if their class is
    asked for. The media files attached to a post or a comment in it are in it with their bytes
    (decision 0036)."""

    custodians: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=100,
        description="Account ids: identity resolves both personas (and audits it).",
    )
    group_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    date_from: UtcDateTime | None = Field(
        default=None, description="Required (`unbounded-scope` without it); without offset, UTC."
    )
    date_to: UtcDateTime | None = Field(default=None, description="Required; after `date_from`.")
    terms: list[Term] = Field(default_factory=list, max_length=50)
    contexts: list[ExportContext] = Field(
        default_factory=lambda: list(ALL_CONTEXTS), min_length=1, max_length=2
    )
    classes: list[ContentClass] = Field(
        default_factory=lambda: list(get_args(ContentClass)),
        min_length=1,
        max_length=len(CONTENT_CLASSES),
        description="Content classes; without `edit_history` a professional post is in it with its "
        "latest version only.",
    )
    include_versions: bool = Field(
        default=True,
        strict=True,
        description="Every version, deleted items included; false: the latest version of each item "
        "not deleted.",
    )
    redact: bool = Field(
        default=False,
        strict=True,
        description="Replace every persona that is not a custodian's by a pseudonym (`person-` and ten "
        "hexadecimal digits), in authors, mentions, reactions and members, and mask their `@handle` in text.",
    )

    @field_validator("custodians", "group_ids", "terms", "contexts", "classes")
    @classmethod
    def _each_once(cls, values: list[Any]) -> list[Any]:
        return list(dict.fromkeys(values))

    @model_validator(mode="after")
    def _range(self) -> ExportCreate:
        if self.date_from is not None and self.date_to is not None and self.date_to <= self.date_from:
            raise ValueError("date_to must be after date_from")
        return self


class ExportPersona(BaseModel):
    model_config = ConfigDict(extra="ignore")

    persona_id: uuid.UUID
    account_id: uuid.UUID
    context: ExportContext


class ExportScopePublic(BaseModel):
    """The scope as asked, with the personas identity resolved for the custodians when the
    export was asked for."""

    model_config = ConfigDict(extra="ignore")

    custodians: list[uuid.UUID]
    personas: list[ExportPersona]
    group_ids: list[uuid.UUID]
    date_from: datetime
    date_to: datetime
    terms: list[str]
    contexts: list[ExportContext]
    classes: list[str]
    include_versions: bool
    redact: bool


class DownloadPublic(BaseModel):
    by: uuid.UUID = Field(description="The persona that downloaded the package.")
    at: datetime


class CustodyPublic(BaseModel):
    requested_by: uuid.UUID
    requested_at: datetime
    downloads: list[DownloadPublic] = Field(description="The latest 100 downloads, newest first.")
    downloads_total: int


class DownloadLink(BaseModel):
    url: str = Field(
        description="The package's address, signed for this export: needs the caller's token too."
    )
    expires_at: datetime


class ExportPublic(BaseModel):
    """A matter's export, as an officer sees it before releasing it."""

    id: uuid.UUID
    matter_id: uuid.UUID
    status: ExportStatus
    scope: ExportScopePublic
    as_of: datetime = Field(description="The snapshot: versions recorded after it are left out.")
    created_at: datetime
    finished_at: datetime | None
    counted: int = Field(description="Items written so far.")
    total: int | None = Field(description="Items in scope, once the worker counted them.")
    percent: int
    attempts: int
    error: str | None
    size: int | None = Field(description="The package's size in bytes, once ready.")
    sha256: str | None = Field(description="SHA-256 (hex) of the package, once ready.")
    redacted: dict[str, int] = Field(
        description="What redaction replaced, by kind (authors, mentions, handles, reactions, members, "
        "personas: the distinct personas)."
    )
    media_missing: int = Field(
        description="Media files whose bytes media could not give: listed in the package's manifest "
        "(`media.missing`, with the reason), not in the package."
    )
    custody: CustodyPublic
    download: DownloadLink | None = Field(description="While the package is ready.")


class MyExportPublic(BaseModel):
    """A persona's own export (`/api/v1/me/export`)."""

    id: uuid.UUID
    status: ExportStatus
    personas: list[uuid.UUID] = Field(
        description="The personas it holds: the caller's, and its personal twin's from a professional token."
    )
    as_of: datetime
    created_at: datetime
    finished_at: datetime | None
    counted: int
    total: int | None
    percent: int
    size: int | None
    sha256: str | None
    failed: bool = Field(description="It could not be made; ask for another one.")
    media_missing: int = Field(
        description="Files whose bytes could not be fetched: listed in the package's manifest, not in it."
    )
    downloads: list[datetime] = Field(description="When the package was downloaded (the latest 100).")
    download: DownloadLink | None


def export_percent(row: Export) -> int:
    if row.status in ("ready", "expired"):
        return 100
    if not row.total:
        return 0
    return min(99, row.counted * 100 // row.total)


def _media_missing(row: Export) -> int:
    media = row.manifest.get("media") if isinstance(row.manifest, dict) else None
    return int(media.get("missing", 0)) if isinstance(media, dict) else 0


def export_public(
    row: Export, downloads: list[Download], downloads_total: int, link: DownloadLink | None
) -> ExportPublic:
    assert row.matter_id is not None
    return ExportPublic(
        id=row.id,
        matter_id=row.matter_id,
        status=row.status,
        scope=ExportScopePublic.model_validate(row.scope),
        as_of=row.as_of,
        created_at=row.created_at,
        finished_at=row.finished_at,
        counted=row.counted,
        total=row.total,
        percent=export_percent(row),
        attempts=row.attempts,
        error=row.error,
        size=row.size,
        sha256=row.sha256,
        redacted={str(k): int(v) for k, v in row.redacted.items()},
        media_missing=_media_missing(row),
        custody=CustodyPublic(
            requested_by=row.requested_by,
            requested_at=row.created_at,
            downloads=[DownloadPublic(by=d.by, at=d.at) for d in downloads],
            downloads_total=downloads_total,
        ),
        download=link,
    )


def my_export_public(row: Export, downloads: list[Download], link: DownloadLink | None) -> MyExportPublic:
    return MyExportPublic(
        id=row.id,
        status=row.status,
        personas=[uuid.UUID(p["persona_id"]) for p in row.scope.get("personas", [])],
        as_of=row.as_of,
        created_at=row.created_at,
        finished_at=row.finished_at,
        counted=row.counted,
        total=row.total,
        percent=export_percent(row),
        size=row.size,
        sha256=row.sha256,
        failed=row.status == "failed",
        media_missing=_media_missing(row),
        downloads=[d.at for d in downloads],
        download=link,
    )
