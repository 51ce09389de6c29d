"""Every id and timestamp the API publishes is classified against the persona boundary's rule
(docs/boundary.md, "Fields"): a new one fails here until someone has decided which class it is
in, and so whether it could pair a person's two personas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.gateway.test_openapi import _document, _operations

CONTENT = "content: made by one persona's action in one context"
PERSONA = "persona: a random id, or the profile's own last edit"
ACCOUNT = "account: only the owner, administrators and SCIM see it"
TOKEN = "token: the persona the caller just signed in as, or just confirmed"
CALENDAR = "a date the people of a group chose or the week it counts, not an event of an account"
MODERATION = (
    "moderation: a report on, or an action about, one context's content or persona, made by its "
    "reporter or a moderator; no account's event moves it"
)
ORGANISATION = "organisation: set by an administrator for everyone, not an event of a persona"
RECORDS = (
    "records: an officer's matter, hold, export, certificate, policy or audit entry, shown to "
    "records officers only, every call audited (decision 0033)"
)
OWN_EXPORT = "records: a persona's own export, made by its request and shown to it alone"
MEDIA = (
    "media: an upload, made by one persona's action in one context, shown only as its owner (a "
    "post, comment, avatar or group image) is shown, or to its uploader (decision 0036)"
)
SESSIONS = (
    "sessions: the caller's own sign-in or grant (a random id, days not moments), shown only in the "
    "context it belongs to: an app's grant to its persona, browsers and password sign-ins to the "
    "professional persona (decision 0035)"
)

CLASSIFIED: dict[tuple[str, str], str] = {
    ("CustodyPublic", "requested_at"): RECORDS,
    ("CustodyPublic", "requested_by"): RECORDS,
    ("DispositionPublic", "finished_at"): RECORDS,
    ("DispositionPublic", "id"): RECORDS,
    ("DispositionPublic", "started_at"): RECORDS,
    ("DispositionPublic", "started_by"): RECORDS,
    ("DownloadLink", "expires_at"): RECORDS,
    ("DownloadPublic", "at"): RECORDS,
    ("DownloadPublic", "by"): RECORDS,
    ("ExportPersona", "account_id"): RECORDS,
    ("ExportPersona", "persona_id"): RECORDS,
    ("ExportPublic", "as_of"): RECORDS,
    ("ExportPublic", "created_at"): RECORDS,
    ("ExportPublic", "finished_at"): RECORDS,
    ("ExportPublic", "id"): RECORDS,
    ("ExportPublic", "matter_id"): RECORDS,
    ("ExportScopePublic", "date_from"): RECORDS,
    ("ExportScopePublic", "date_to"): RECORDS,
    ("ExportScopePublic", "group_ids"): RECORDS,
    ("HoldPersonaPublic", "account_id"): RECORDS,
    ("HoldPersonaPublic", "persona_id"): RECORDS,
    ("HoldPublic", "created_at"): RECORDS,
    ("HoldPublic", "created_by"): RECORDS,
    ("HoldPublic", "date_from"): RECORDS,
    ("HoldPublic", "date_to"): RECORDS,
    ("HoldPublic", "group_ids"): RECORDS,
    ("HoldPublic", "id"): RECORDS,
    ("HoldPublic", "matter_id"): RECORDS,
    ("HoldPublic", "released_at"): RECORDS,
    ("HoldPublic", "released_by"): RECORDS,
    ("MatterPublic", "closed_at"): RECORDS,
    ("MatterPublic", "closed_by"): RECORDS,
    ("MatterPublic", "created_at"): RECORDS,
    ("MatterPublic", "created_by"): RECORDS,
    ("MatterPublic", "id"): RECORDS,
    ("PolicyPublic", "updated_at"): RECORDS,
    ("PolicyPublic", "updated_by"): RECORDS,
    ("RecordsAuditEntryPublic", "at"): RECORDS,
    ("RecordsAuditEntryPublic", "id"): RECORDS,
    ("RecordsAuditEntryPublic", "matter_id"): RECORDS,
    ("RecordsAuditEntryPublic", "officer_id"): RECORDS,
    ("MyExportPublic", "as_of"): OWN_EXPORT,
    ("MyExportPublic", "created_at"): OWN_EXPORT,
    ("MyExportPublic", "finished_at"): OWN_EXPORT,
    ("MyExportPublic", "id"): OWN_EXPORT,
    ("AccountAdminPublic", "created_at"): ACCOUNT,
    ("AccountAdminPublic", "id"): ACCOUNT,
    ("AuditEntryPublic", "account_id"): ACCOUNT,
    ("AuditEntryPublic", "created_at"): ACCOUNT,
    ("AuditEntryPublic", "id"): ACCOUNT,
    ("AccountVerified", "persona_id"): TOKEN,
    ("AuthorPublic", "id"): PERSONA,
    ("CharterPublic", "review_at"): CALENDAR,
    ("ClientCreated", "client_id"): ACCOUNT,
    ("ClientCreated", "created_at"): ACCOUNT,
    ("ClientCreated", "revoked_at"): ACCOUNT,
    ("ClientPublic", "client_id"): ACCOUNT,
    ("ClientPublic", "created_at"): ACCOUNT,
    ("ClientPublic", "revoked_at"): ACCOUNT,
    ("CommentPublic", "created_at"): CONTENT,
    ("CommentPublic", "edited_at"): CONTENT,
    ("CommentPublic", "id"): CONTENT,
    ("CommentPublic", "parent_id"): CONTENT,
    ("CommentPublic", "post_id"): CONTENT,
    ("CommentPublic", "updated_at"): CONTENT,
    ("CommentSearchItem", "created_at"): CONTENT,
    ("CommentSearchItem", "edited_at"): CONTENT,
    ("CommentSearchItem", "id"): CONTENT,
    ("CommentSearchItem", "parent_id"): CONTENT,
    ("CommentSearchItem", "post_id"): CONTENT,
    ("CommentSearchItem", "updated_at"): CONTENT,
    ("FollowPublic", "persona_id"): PERSONA,
    ("FollowPublic", "since"): CONTENT,
    ("GroupHealth", "computed_at"): CONTENT,
    ("GroupHealth", "group_id"): CONTENT,
    ("GroupHealth", "last_activity_at"): CONTENT,
    ("GroupHealth", "review_at"): CALENDAR,
    ("GroupPublic", "archived_at"): CONTENT,
    ("GroupPublic", "created_at"): CONTENT,
    ("GroupPublic", "id"): CONTENT,
    ("GroupPublic", "updated_at"): CONTENT,
    ("GroupSearchItem", "archived_at"): CONTENT,
    ("GroupSearchItem", "created_at"): CONTENT,
    ("GroupSearchItem", "id"): CONTENT,
    ("GroupSearchItem", "updated_at"): CONTENT,
    ("GroupSummary", "id"): CONTENT,
    ("InvitationPublic", "created_at"): CONTENT,
    ("InvitationPublic", "decided_at"): CONTENT,
    ("InvitationPublic", "invited_by"): PERSONA,
    ("InvitationPublic", "persona_id"): PERSONA,
    ("JoinRequestPublic", "created_at"): CONTENT,
    ("JoinRequestPublic", "decided_at"): CONTENT,
    ("JoinRequestPublic", "group_id"): CONTENT,
    ("JoinRequestPublic", "persona_id"): PERSONA,
    ("MePublic", "account_id"): ACCOUNT,
    ("MePublic", "created_at"): ACCOUNT,
    ("MemberPublic", "joined_at"): CONTENT,
    ("MemberPublic", "persona_id"): PERSONA,
    ("MembershipPublic", "group_id"): CONTENT,
    ("MembershipPublic", "joined_at"): CONTENT,
    ("MembershipPublic", "persona_id"): PERSONA,
    ("MentionPublic", "id"): PERSONA,
    ("MyMembershipPublic", "joined_at"): CONTENT,
    ("NotificationPublic", "comment_id"): CONTENT,
    ("NotificationPublic", "created_at"): CONTENT,
    ("NotificationPublic", "id"): CONTENT,
    ("NotificationPublic", "post_id"): CONTENT,
    ("PersonaLinkPublic", "account_id"): ACCOUNT,
    ("PersonaLinkPublic", "personal_persona_id"): ACCOUNT,
    ("PersonaLinkPublic", "professional_persona_id"): ACCOUNT,
    ("PersonaPublic", "id"): PERSONA,
    ("PersonaPublic", "updated_at"): PERSONA,
    ("PersonaSearchItem", "id"): PERSONA,
    ("PersonaSearchItem", "updated_at"): PERSONA,
    ("PersonaSummary", "id"): PERSONA,
    ("PostPublic", "created_at"): CONTENT,
    ("PostPublic", "edited_at"): CONTENT,
    ("PostPublic", "group_id"): CONTENT,
    ("PostPublic", "id"): CONTENT,
    ("PostPublic", "pinned_until"): CONTENT,
    ("PostPublic", "updated_at"): CONTENT,
    ("PostSearchItem", "created_at"): CONTENT,
    ("PostSearchItem", "edited_at"): CONTENT,
    ("PostSearchItem", "group_id"): CONTENT,
    ("PostSearchItem", "id"): CONTENT,
    ("PostSearchItem", "pinned_until"): CONTENT,
    ("PostSearchItem", "updated_at"): CONTENT,
    ("Problem", "trace_id"): "a request's trace, made per request",
    ("RevisionPublic", "id"): CONTENT,
    ("RevisionPublic", "replaced_at"): CONTENT,
    ("TokenResponse", "persona_id"): TOKEN,
    ("WebhookCreated", "created_at"): CONTENT,
    ("WebhookCreated", "id"): CONTENT,
    ("WebhookCreated", "updated_at"): CONTENT,
    ("WebhookDeliveryPublic", "created_at"): CONTENT,
    ("WebhookDeliveryPublic", "delivered_at"): CONTENT,
    ("WebhookDeliveryPublic", "event_id"): CONTENT,
    ("WebhookDeliveryPublic", "id"): CONTENT,
    ("WebhookDeliveryPublic", "next_attempt_at"): CONTENT,
    ("WebhookPublic", "created_at"): CONTENT,
    ("WebhookPublic", "id"): CONTENT,
    ("WebhookPublic", "updated_at"): CONTENT,
    ("WeekActivity", "end"): CALENDAR,
    ("WeekActivity", "start"): CALENDAR,
    ("ActionPublic", "created_at"): MODERATION,
    ("ActionPublic", "id"): MODERATION,
    ("ActionPublic", "lifted_at"): MODERATION,
    ("ActionPublic", "reverted_at"): MODERATION,
    ("ActionPublic", "until"): MODERATION,
    ("AppealPublic", "created_at"): MODERATION,
    ("AppealPublic", "id"): MODERATION,
    ("NoticePublic", "appeal_by"): MODERATION,
    ("NoticePublic", "created_at"): MODERATION,
    ("NoticePublic", "id"): MODERATION,
    ("NoticePublic", "until"): MODERATION,
    ("ReportPublic", "created_at"): MODERATION,
    ("ReportPublic", "id"): MODERATION,
    ("ReportPublic", "resolved_at"): MODERATION,
    ("ReportReview", "appeal_of"): MODERATION,
    ("ReportReview", "created_at"): MODERATION,
    ("ReportReview", "first_action_at"): MODERATION,
    ("ReportReview", "id"): MODERATION,
    ("ReportReview", "resolved_at"): MODERATION,
    ("ReportSummary", "appeal_of"): MODERATION,
    ("ReportSummary", "created_at"): MODERATION,
    ("ReportSummary", "id"): MODERATION,
    ("ReportSummary", "resolved_at"): MODERATION,
    ("EvidencePublic", "captured_at"): MODERATION,
    ("ActionPublic", "group_id"): CONTENT,
    ("EvidencePublic", "created_at"): CONTENT,
    ("EvidencePublic", "item_id"): CONTENT,
    ("ReportReview", "group_id"): CONTENT,
    ("ReportSummary", "group_id"): CONTENT,
    ("ReportTarget", "id"): CONTENT,
    ("ReviewTarget", "id"): CONTENT,
    ("ActionPublic", "moderator_id"): PERSONA,
    ("ActionPublic", "subject_id"): PERSONA,
    ("EvidencePublic", "author_id"): PERSONA,
    ("ReportHandle", "id"): PERSONA,
    ("ReportPersona", "id"): PERSONA,
    ("ReportReview", "assignee_id"): PERSONA,
    ("ReportReview", "subject_id"): PERSONA,
    ("ReportSummary", "assignee_id"): PERSONA,
    ("ReportSummary", "subject_id"): PERSONA,
    ("CodeOfConduct", "updated_at"): ORGANISATION,
    ("TermPublic", "created_at"): ORGANISATION,
    ("TermPublic", "id"): ORGANISATION,
    ("AppCreated", "created_at"): ORGANISATION,
    ("AppCreated", "id"): ORGANISATION,
    ("AppCreated", "revoked_at"): ORGANISATION,
    ("AppPublic", "created_at"): ORGANISATION,
    ("AppPublic", "id"): ORGANISATION,
    ("AppPublic", "revoked_at"): ORGANISATION,
    ("SessionApp", "id"): ORGANISATION,
    # a stream event's id is the reader's position: the ids of the last post and notification
    ("NotificationEvent", "id"): CONTENT,
    ("PostEvent", "id"): CONTENT,
    ("SessionPublic", "expires_on"): SESSIONS,
    ("SessionPublic", "id"): SESSIONS,
    ("SessionPublic", "since"): SESSIONS,
    ("MediaPublic", "created_at"): MEDIA,
    ("MediaPublic", "id"): MEDIA,
    # an attachment as its owner keeps it: one schema in the merge when feed, groups and identity
    # publish the same one, else one per service, named with its title
    ("MediaAttachment", "id"): MEDIA,
}

# the only answers that may hold a persona together with its account, or both personas: the
# owner's own view and the audited break-glass
ACCOUNT_AND_PERSONA = {"MePublic", "PersonaLinkPublic"}

TIME_FORMATS = {"date-time", "date"}


def _formats(schema: Any) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    found = {schema["format"]} if "format" in schema else set()
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            found |= _formats(sub)
    return found


def _is_id_or_time(name: str, schema: Any) -> bool:
    return bool(
        _formats(schema) & (TIME_FORMATS | {"uuid"})
        or name in ("id", "time", "since")
        or name.endswith(("_id", "_ids", "_at", "_by", "_until"))
    )


def _fields(document: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(schema, property, class) for every id or timestamp reachable from a response."""
    schemas = document["components"]["schemas"]

    def walk(schema: Any, owner: str, seen: frozenset[str]) -> Iterator[tuple[str, str]]:
        if not isinstance(schema, dict):
            return
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                yield from walk(schemas[name], name, seen | {name})
            return
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for sub in schema.get(key, []):
                yield from walk(sub, owner, seen)
        for key in ("items", "additionalProperties"):
            yield from walk(schema.get(key), owner, seen)
        for name, prop in schema.get("properties", {}).items():
            if _is_id_or_time(name, prop):
                yield owner, name
            yield from walk(prop, owner, seen)

    for _path, _method, operation in _operations(document):
        for answer in operation.get("responses", {}).values():
            for content in (answer.get("content") or {}).values():
                for owner, name in walk(content.get("schema", {}), "(inline)", frozenset()):
                    yield owner, name, CLASSIFIED.get((owner, name), "")


async def test_every_published_id_and_timestamp_is_classified_against_the_boundary(suite):
    fields = set(_fields(await _document(suite)))
    unclassified = sorted(f"{owner}.{name}" for owner, name, kind in fields if not kind)
    assert not unclassified, f"classify these in CLASSIFIED and docs/boundary.md: {unclassified}"
    assert len(fields) >= 60  # the walk reaches the whole document


async def test_no_answer_pairs_a_persona_with_its_account_but_the_owners_and_the_break_glass(suite):
    by_schema: dict[str, set[str]] = {}
    for owner, _name, kind in _fields(await _document(suite)):
        by_schema.setdefault(owner, set()).add(kind)
    mixed = sorted(owner for owner, kinds in by_schema.items() if ACCOUNT in kinds and PERSONA in kinds)
    assert set(mixed) <= ACCOUNT_AND_PERSONA, mixed


async def test_a_persona_publishes_no_creation_time(suite):
    schemas = (await _document(suite))["components"]["schemas"]
    for name in ("PersonaPublic", "PersonaSearchItem", "PersonaSummary", "AuthorPublic", "MentionPublic"):
        if name in schemas:
            assert "created_at" not in schemas[name].get("properties", {}), name
