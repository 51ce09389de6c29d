"""Moderation's public contract: request and response models, and the functions that map a
stored row to its one public shape.

No shape here holds an account id, an email or a link between a person's two personas
(docs/boundary.md). What a reporter reads never names a moderator; what a notice's persona
reads never names the reporter or the moderator.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.contexts import Context
from kit.text import IsoDateTime, MultiLineText
from kit.timeutil import as_utc
from services.moderation.models import Action, Evidence, Notice, PersonaReplica, Report

Category = Literal["spam", "harassment", "privacy", "misinformation", "code_of_conduct", "other"]
TargetType = Literal["post", "comment", "persona", "group"]
ReportKind = Literal["report", "system", "appeal"]
ReportStatus = Literal["open", "assigned", "resolved"]
ActionKind = Literal[
    "none", "hide", "remove", "lock", "warn", "limit", "suspend_persona", "release", "revert"
]
AsRole = Literal["staff", "group"]
Outcome = Literal["action_taken", "no_action"]
AppealOutcome = Literal["reverted", "upheld"]

# Strict: JSON `true` is not rule 1, nor a version.
RuleNumber = Annotated[int, Field(ge=1, le=10_000, strict=True)]
Rules = Annotated[
    list[RuleNumber],
    Field(max_length=20, description="Numbers of the code of conduct's rules in force that it cites."),
]
Reason = Annotated[
    str,
    Field(min_length=1, max_length=2000, description="Why, for the record (1 to 2000 characters)."),
    MultiLineText,
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReportTarget(BaseModel):
    type: TargetType = Field(description="What is reported or acted on.")
    id: uuid.UUID = Field(description="The post's, comment's, persona's or group's id.")


class ReportTargetIn(Strict, ReportTarget):
    pass


class ReportCreate(Strict):
    target: ReportTargetIn
    category: Category
    rules: Rules = Field(default_factory=list)
    comment: Annotated[str, Field(max_length=1000), MultiLineText] | None = Field(
        default=None, description="What the moderators should know (up to 1000 characters)."
    )
    post_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=5,
        description="Up to 5 more posts of the same author, for context; each must be visible to the "
        "reporter.",
    )


class ReportPublic(BaseModel):
    """A report as its reporter reads it: never who handled it."""

    id: uuid.UUID
    target: ReportTarget
    context: Context
    category: Category
    rules: list[int]
    comment: str | None
    status: ReportStatus
    outcome: Outcome | None = Field(
        description="Once resolved: whether an action was taken (`action_taken`) or not (`no_action`)."
    )
    created_at: datetime
    resolved_at: datetime | None


class ReportPersona(BaseModel):
    """A persona as moderation's replica knows it (null fields once it is erased)."""

    id: uuid.UUID
    handle: str | None
    display_name: str | None


class ReportHandle(BaseModel):
    """A reporter or an assignee in a review: the persona's id and handle (null once erased)."""

    id: uuid.UUID
    handle: str | None


class ReviewTarget(ReportTarget):
    author: ReportPersona | None = Field(
        description="The persona concerned: the author of a post or comment, or the persona itself; "
        "null for a group."
    )


class EvidencePublic(BaseModel):
    """The content as its owner returned it when the report was filed."""

    ordinal: int = Field(description="0 for the reported item, then the added posts in order.")
    item_type: Literal["post", "comment", "group"]
    item_id: uuid.UUID
    author_id: uuid.UUID | None
    body: str
    links: list[str]
    created_at: datetime | None
    captured_at: datetime


class ActionPublic(BaseModel):
    id: uuid.UUID
    kind: ActionKind
    as_role: AsRole = Field(description="`staff`, or `group` for a group's owner or moderator.")
    moderator_id: uuid.UUID | None
    group_id: uuid.UUID | None
    target: ReportTarget
    subject_id: uuid.UUID | None
    reason: str
    until: datetime | None
    created_at: datetime
    lifted_at: datetime | None = Field(description="When its `until` was reached and it was lifted.")
    reverted_at: datetime | None = Field(description="When an upheld appeal reverted it.")


class ReportSummary(BaseModel):
    """A report as the queue lists it."""

    id: uuid.UUID
    kind: ReportKind = Field(
        description="`report` (by a persona), `system` (held content) or `appeal` (of an action)."
    )
    context: Context
    status: ReportStatus
    category: Category
    rules: list[int]
    target: ReportTarget
    subject_id: uuid.UUID | None = Field(description="The persona concerned, if any.")
    group_id: uuid.UUID | None = Field(description="The group whose content it is, if any.")
    assignee_id: uuid.UUID | None
    appeal_of: uuid.UUID | None = Field(description="For an appeal: the action appealed.")
    action: ActionKind | None = Field(description="Once resolved: the action it was resolved with.")
    version: int = Field(description="Raised by every change; `resolve` may name the version it saw.")
    created_at: datetime
    resolved_at: datetime | None


class ReportReview(ReportSummary):
    """Everything a moderator needs to decide, from moderation's own tables only."""

    target: ReviewTarget
    conduct_version: int = Field(description="The code of conduct's version in force at filing.")
    comment: str | None = Field(description="The reporter's comment, or an appeal's text.")
    reporter: ReportHandle | None = Field(
        description="Null for a system report, or once the reporter is erased."
    )
    assignee: ReportHandle | None
    reason: str | None
    first_action_at: datetime | None
    evidence: list[EvidencePublic]
    actions: list[ActionPublic] = Field(description="The actions taken on this report, oldest first.")


class ResolveRequest(Strict):
    action: ActionKind = Field(
        description="`none` dismisses; `hide`, `remove`, `lock`, `release` act on the content; `warn`, "
        "`limit`, `suspend_persona` on the persona (staff only); `revert` upholds an appeal."
    )
    reason: Reason
    until: IsoDateTime | None = Field(
        default=None, description="When a `limit` (required) or a `suspend_persona` (optional) ends."
    )
    rules: Rules | None = Field(default=None, description="The rules broken; the report's when left out.")
    version: int | None = Field(
        default=None,
        ge=0,
        le=2_147_483_647,
        strict=True,
        description="The report's version the moderator decided on: 409 if it changed.",
    )

    @field_validator("until")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        """A time without an offset is read as UTC."""
        return None if value is None else as_utc(value)


class AppealPublic(BaseModel):
    id: uuid.UUID
    status: ReportStatus
    outcome: AppealOutcome | None = Field(
        description="Once decided: `reverted` (the action was undone) or `upheld` (it stays)."
    )
    created_at: datetime


class NoticePublic(BaseModel):
    """What a persona is told of an action taken against it or its content."""

    id: uuid.UUID
    action: ActionKind
    category: Category
    rules: list[int]
    until: datetime | None
    target: ReportTarget
    context: Context
    appeal_by: datetime = Field(description="The last moment to appeal.")
    appeal: AppealPublic | None
    created_at: datetime


class AppealCreate(Strict):
    text: Annotated[str, Field(min_length=1, max_length=2000), MultiLineText] = Field(
        description="Why the action should be undone (1 to 2000 characters)."
    )


def outcome(report: Report) -> Outcome | None:
    if report.status != "resolved":
        return None
    return "no_action" if report.action in (None, "none") else "action_taken"


def report_public(report: Report) -> ReportPublic:
    return ReportPublic(
        id=report.id,
        target=ReportTarget(type=report.target_type, id=report.target_id),
        context=report.context,
        category=report.category,
        rules=list(report.rules),
        comment=report.comment,
        status=report.status,
        outcome=outcome(report),
        created_at=report.created_at,
        resolved_at=report.resolved_at,
    )


def _summary_fields(report: Report) -> dict[str, object]:
    return {
        "id": report.id,
        "kind": report.kind,
        "context": report.context,
        "status": report.status,
        "category": report.category,
        "rules": list(report.rules),
        "target": ReportTarget(type=report.target_type, id=report.target_id),
        "subject_id": report.subject_id,
        "group_id": report.group_id,
        "assignee_id": report.assignee_id,
        "appeal_of": report.appeal_of,
        "action": report.action,
        "version": report.version,
        "created_at": report.created_at,
        "resolved_at": report.resolved_at,
    }


def report_summary(report: Report) -> ReportSummary:
    return ReportSummary.model_validate(_summary_fields(report))


def persona_ref(persona_id: uuid.UUID | None, replica: PersonaReplica | None) -> ReportPersona | None:
    if persona_id is None:
        return None
    if replica is None or replica.status == "erased":
        return ReportPersona(id=persona_id, handle=None, display_name=None)
    return ReportPersona(id=persona_id, handle=replica.handle, display_name=replica.display_name)


def handle_ref(persona_id: uuid.UUID | None, replica: PersonaReplica | None) -> ReportHandle | None:
    if persona_id is None:
        return None
    erased = replica is None or replica.status == "erased"
    return ReportHandle(id=persona_id, handle=None if erased or replica is None else replica.handle)


def evidence_public(row: Evidence) -> EvidencePublic:
    return EvidencePublic.model_validate(row, from_attributes=True)


def action_public(action: Action) -> ActionPublic:
    return ActionPublic(
        id=action.id,
        kind=action.kind,
        as_role=action.as_role,
        moderator_id=action.moderator_id,
        group_id=action.group_id,
        target=ReportTarget(type=action.target_type, id=action.target_id),
        subject_id=action.subject_id,
        reason=action.reason,
        until=action.until,
        created_at=action.created_at,
        lifted_at=action.lifted_at,
        reverted_at=action.reverted_at,
    )


def report_review(
    report: Report,
    personas: dict[uuid.UUID, PersonaReplica],
    evidence: list[Evidence],
    actions: list[Action],
) -> ReportReview:
    """``personas`` holds the replica rows of the subject, the reporter and the assignee."""
    fields = _summary_fields(report)
    subject = persona_ref(report.subject_id, personas.get(report.subject_id)) if report.subject_id else None
    fields["target"] = ReviewTarget(type=report.target_type, id=report.target_id, author=subject)
    return ReportReview.model_validate(
        {
            **fields,
            "conduct_version": report.conduct_version,
            "comment": report.comment,
            "reporter": handle_ref(report.reporter_id, personas.get(report.reporter_id))
            if report.reporter_id
            else None,
            "assignee": handle_ref(report.assignee_id, personas.get(report.assignee_id))
            if report.assignee_id
            else None,
            "reason": report.reason,
            "first_action_at": report.first_action_at,
            "evidence": [evidence_public(e) for e in evidence],
            "actions": [action_public(a) for a in actions],
        }
    )


def appeal_public(appeal: Report) -> AppealPublic:
    result: AppealOutcome | None = None
    if appeal.status == "resolved":
        result = "reverted" if appeal.action == "revert" else "upheld"
    return AppealPublic(
        id=appeal.id,
        status=appeal.status,
        outcome=result,
        created_at=appeal.created_at,
    )


def notice_public(notice: Notice, appeal: Report | None) -> NoticePublic:
    return NoticePublic(
        id=notice.id,
        action=notice.kind,
        category=notice.category,
        rules=list(notice.rules),
        until=notice.until,
        target=ReportTarget(type=notice.target_type, id=notice.target_id),
        context=notice.context,
        appeal_by=notice.appeal_by,
        appeal=appeal_public(appeal) if appeal is not None else None,
        created_at=notice.created_at,
    )
