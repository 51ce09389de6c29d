"""Every id and timestamp the API publishes is classified against the persona boundary's rule
(docs/boundary.md, "Fields"): a new one fails here until someone has decided which class it is
in, and so whether it could pair a person's two personas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from domain.catalogue import openapi_webhooks
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
PROTOCOL = "protocol: a fixed name the SCIM standard gives a schema or resource type, the same for all"

CLASSIFIED: dict[tuple[str, str], str] = {
    ("ResourceType", "id"): PROTOCOL,
    ("TestDeliveryQueued", "event_id"): CONTENT,
    ("Schema", "id"): PROTOCOL,
    ("ScimMeta", "created"): ACCOUNT,
    ("ScimMeta", "lastModified"): ACCOUNT,
    ("ScimUser", "id"): ACCOUNT,
    ("Custody", "requested_at"): RECORDS,
    ("Custody", "requested_by"): RECORDS,
    ("Disposition", "finished_at"): RECORDS,
    ("Disposition", "id"): RECORDS,
    ("Disposition", "started_at"): RECORDS,
    ("Disposition", "started_by"): RECORDS,
    ("DownloadLink", "expires_at"): RECORDS,
    ("Download", "at"): RECORDS,
    ("Download", "by"): RECORDS,
    ("ExportPersona", "account_id"): RECORDS,
    ("ExportPersona", "persona_id"): RECORDS,
    ("Export", "as_of"): RECORDS,
    ("Export", "created_at"): RECORDS,
    ("Export", "finished_at"): RECORDS,
    ("Export", "id"): RECORDS,
    ("Export", "matter_id"): RECORDS,
    ("ExportScope", "date_from"): RECORDS,
    ("ExportScope", "date_to"): RECORDS,
    ("ExportScope", "group_ids"): RECORDS,
    ("HoldPersona", "account_id"): RECORDS,
    ("HoldPersona", "persona_id"): RECORDS,
    ("Hold", "created_at"): RECORDS,
    ("Hold", "created_by"): RECORDS,
    ("Hold", "date_from"): RECORDS,
    ("Hold", "date_to"): RECORDS,
    ("Hold", "group_ids"): RECORDS,
    ("Hold", "id"): RECORDS,
    ("Hold", "matter_id"): RECORDS,
    ("Hold", "released_at"): RECORDS,
    ("Hold", "released_by"): RECORDS,
    ("Matter", "closed_at"): RECORDS,
    ("Matter", "closed_by"): RECORDS,
    ("Matter", "created_at"): RECORDS,
    ("Matter", "created_by"): RECORDS,
    ("Matter", "id"): RECORDS,
    ("Policy", "updated_at"): RECORDS,
    ("Policy", "updated_by"): RECORDS,
    ("RecordsAuditEntry", "at"): RECORDS,
    ("RecordsAuditEntry", "id"): RECORDS,
    ("RecordsAuditEntry", "matter_id"): RECORDS,
    ("RecordsAuditEntry", "officer_id"): RECORDS,
    ("MyExport", "as_of"): OWN_EXPORT,
    ("MyExport", "created_at"): OWN_EXPORT,
    ("MyExport", "finished_at"): OWN_EXPORT,
    ("MyExport", "id"): OWN_EXPORT,
    ("AccountAdmin", "created_at"): ACCOUNT,
    ("AccountAdmin", "id"): ACCOUNT,
    ("AuditEntry", "account_id"): ACCOUNT,
    ("AuditEntry", "created_at"): ACCOUNT,
    ("AuditEntry", "id"): ACCOUNT,
    ("AccountVerified", "persona_id"): TOKEN,
    ("Author", "id"): PERSONA,
    ("Charter", "review_at"): CALENDAR,
    ("ClientCreated", "client_id"): ACCOUNT,
    ("ClientCreated", "created_at"): ACCOUNT,
    ("ClientCreated", "revoked_at"): ACCOUNT,
    ("Client", "client_id"): ACCOUNT,
    ("Client", "created_at"): ACCOUNT,
    ("Client", "revoked_at"): ACCOUNT,
    ("Comment", "created_at"): CONTENT,
    ("Comment", "edited_at"): CONTENT,
    ("Comment", "id"): CONTENT,
    ("Comment", "parent_id"): CONTENT,
    ("Comment", "post_id"): CONTENT,
    ("Comment", "updated_at"): CONTENT,
    ("CommentSearchItem", "created_at"): CONTENT,
    ("CommentSearchItem", "edited_at"): CONTENT,
    ("CommentSearchItem", "id"): CONTENT,
    ("CommentSearchItem", "parent_id"): CONTENT,
    ("CommentSearchItem", "post_id"): CONTENT,
    ("CommentSearchItem", "updated_at"): CONTENT,
    ("Follow", "persona_id"): PERSONA,
    ("Follow", "since"): CONTENT,
    ("GroupHealth", "computed_at"): CONTENT,
    ("GroupHealth", "group_id"): CONTENT,
    ("GroupHealth", "last_activity_at"): CONTENT,
    ("GroupHealth", "review_at"): CALENDAR,
    ("Group", "archived_at"): CONTENT,
    ("Group", "created_at"): CONTENT,
    ("Group", "id"): CONTENT,
    ("Group", "updated_at"): CONTENT,
    ("GroupSearchItem", "archived_at"): CONTENT,
    ("GroupSearchItem", "created_at"): CONTENT,
    ("GroupSearchItem", "id"): CONTENT,
    ("GroupSearchItem", "updated_at"): CONTENT,
    ("GroupSummary", "id"): CONTENT,
    ("Invitation", "created_at"): CONTENT,
    ("Invitation", "decided_at"): CONTENT,
    ("Invitation", "invited_by"): PERSONA,
    ("Invitation", "persona_id"): PERSONA,
    ("JoinRequest", "created_at"): CONTENT,
    ("JoinRequest", "decided_at"): CONTENT,
    ("JoinRequest", "group_id"): CONTENT,
    ("JoinRequest", "persona_id"): PERSONA,
    ("Me", "account_id"): ACCOUNT,
    ("Me", "created_at"): ACCOUNT,
    ("Member", "joined_at"): CONTENT,
    ("Member", "persona_id"): PERSONA,
    ("Membership", "group_id"): CONTENT,
    ("Membership", "joined_at"): CONTENT,
    ("Membership", "persona_id"): PERSONA,
    ("Mention", "id"): PERSONA,
    ("MyMembership", "joined_at"): CONTENT,
    ("Notification", "comment_id"): CONTENT,
    ("Notification", "created_at"): CONTENT,
    ("Notification", "id"): CONTENT,
    ("Notification", "post_id"): CONTENT,
    ("PersonaLink", "account_id"): ACCOUNT,
    ("PersonaLink", "personal_persona_id"): ACCOUNT,
    ("PersonaLink", "professional_persona_id"): ACCOUNT,
    ("Persona", "id"): PERSONA,
    ("Persona", "updated_at"): PERSONA,
    ("PersonaSearchItem", "id"): PERSONA,
    ("PersonaSearchItem", "updated_at"): PERSONA,
    ("PersonaSummary", "id"): PERSONA,
    ("Post", "created_at"): CONTENT,
    ("Post", "edited_at"): CONTENT,
    ("Post", "group_id"): CONTENT,
    ("Post", "id"): CONTENT,
    ("Post", "pinned_until"): CONTENT,
    ("Post", "updated_at"): CONTENT,
    ("PostSearchItem", "created_at"): CONTENT,
    ("PostSearchItem", "edited_at"): CONTENT,
    ("PostSearchItem", "group_id"): CONTENT,
    ("PostSearchItem", "id"): CONTENT,
    ("PostSearchItem", "pinned_until"): CONTENT,
    ("PostSearchItem", "updated_at"): CONTENT,
    ("Problem", "trace_id"): "a request's trace, made per request",
    ("Revision", "id"): CONTENT,
    ("Revision", "replaced_at"): CONTENT,
    ("TokenResponse", "persona_id"): TOKEN,
    ("WebhookCreated", "created_at"): CONTENT,
    ("WebhookCreated", "id"): CONTENT,
    ("WebhookCreated", "updated_at"): CONTENT,
    ("WebhookDelivery", "created_at"): CONTENT,
    ("WebhookDelivery", "delivered_at"): CONTENT,
    ("WebhookDelivery", "event_id"): CONTENT,
    ("WebhookDelivery", "id"): CONTENT,
    ("WebhookDelivery", "next_attempt_at"): CONTENT,
    ("Webhook", "created_at"): CONTENT,
    ("Webhook", "id"): CONTENT,
    ("Webhook", "updated_at"): CONTENT,
    ("WeekActivity", "end"): CALENDAR,
    ("WeekActivity", "start"): CALENDAR,
    ("Action", "created_at"): MODERATION,
    ("Action", "id"): MODERATION,
    ("Action", "lifted_at"): MODERATION,
    ("Action", "reverted_at"): MODERATION,
    ("Action", "until"): MODERATION,
    ("Appeal", "created_at"): MODERATION,
    ("Appeal", "id"): MODERATION,
    ("Notice", "appeal_by"): MODERATION,
    ("Notice", "created_at"): MODERATION,
    ("Notice", "id"): MODERATION,
    ("Notice", "until"): MODERATION,
    ("Report", "created_at"): MODERATION,
    ("Report", "id"): MODERATION,
    ("Report", "resolved_at"): MODERATION,
    ("ReportReview", "appeal_of"): MODERATION,
    ("ReportReview", "created_at"): MODERATION,
    ("ReportReview", "first_action_at"): MODERATION,
    ("ReportReview", "id"): MODERATION,
    ("ReportReview", "resolved_at"): MODERATION,
    ("ReportSummary", "appeal_of"): MODERATION,
    ("ReportSummary", "created_at"): MODERATION,
    ("ReportSummary", "id"): MODERATION,
    ("ReportSummary", "resolved_at"): MODERATION,
    ("Evidence", "captured_at"): MODERATION,
    ("Action", "group_id"): CONTENT,
    ("Evidence", "created_at"): CONTENT,
    ("Evidence", "item_id"): CONTENT,
    ("ReportReview", "group_id"): CONTENT,
    ("ReportSummary", "group_id"): CONTENT,
    ("ReportTarget", "id"): CONTENT,
    ("ReviewTarget", "id"): CONTENT,
    ("Action", "moderator_id"): PERSONA,
    ("Action", "subject_id"): PERSONA,
    ("Evidence", "author_id"): PERSONA,
    ("ReportHandle", "id"): PERSONA,
    ("ReportPersona", "id"): PERSONA,
    ("ReportReview", "assignee_id"): PERSONA,
    ("ReportReview", "subject_id"): PERSONA,
    ("ReportSummary", "assignee_id"): PERSONA,
    ("ReportSummary", "subject_id"): PERSONA,
    ("CodeOfConduct", "updated_at"): ORGANISATION,
    ("Term", "created_at"): ORGANISATION,
    ("Term", "id"): ORGANISATION,
    ("AppCreated", "created_at"): ORGANISATION,
    ("AppCreated", "id"): ORGANISATION,
    ("AppCreated", "revoked_at"): ORGANISATION,
    ("App", "created_at"): ORGANISATION,
    ("App", "id"): ORGANISATION,
    ("App", "revoked_at"): ORGANISATION,
    ("SessionApp", "id"): ORGANISATION,
    # a stream event's id is the reader's position: the ids of the last post and notification
    ("NotificationEvent", "id"): CONTENT,
    ("PostEvent", "id"): CONTENT,
    ("Session", "expires_on"): SESSIONS,
    ("Session", "id"): SESSIONS,
    ("Session", "since"): SESSIONS,
    ("Media", "created_at"): MEDIA,
    ("Media", "id"): MEDIA,
    # an attachment as its owner keeps it: one schema in the merge when feed, groups and identity
    # publish the same one, else one per service, named with its title
    ("MediaAttachment", "id"): MEDIA,
}

# the only answers that may hold a persona together with its account, or both personas: the
# owner's own view and the audited break-glass
ACCOUNT_AND_PERSONA = {"Me", "PersonaLink"}

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
    for name in ("Persona", "PersonaSearchItem", "PersonaSummary", "Author", "Mention"):
        if name in schemas:
            assert "created_at" not in schemas[name].get("properties", {}), name


# The events webhook subscribers receive (domain/catalogue.py, docs/events.md): every id and time
# of their data, classified as the API's own fields are. An event's envelope carries its id and
# time: written by the outbox when the change commits, and for a personal persona's side of an
# account-level change, at its own delayed moment (rule 1), so they are the change's own.
ENVELOPE = "an event's own id and time: those of the change it tells, published when it happens (rule 1)"

EVENT_CLASSIFIED: dict[tuple[str, str], str] = {
    **{(data, field): CONTENT for data in ("PostData", "PostDeletedData") for field in ("id", "group_id")},
    ("PostData", "author_id"): PERSONA,
    ("PostData", "created_at"): CONTENT,
    ("PostData", "updated_at"): CONTENT,
    ("PostDeletedData", "author_id"): PERSONA,
    ("PostDeletedData", "deleted_at"): CONTENT,
    ("PostContent", "media_ids"): MEDIA,
    ("CommentContent", "media_ids"): MEDIA,
    **{
        (data, field): CONTENT
        for data in ("CommentData", "CommentDeletedData")
        for field in ("id", "post_id", "group_id")
    },
    ("CommentData", "parent_id"): CONTENT,
    ("CommentData", "author_id"): PERSONA,
    ("CommentData", "created_at"): CONTENT,
    ("CommentDeletedData", "deleted_at"): CONTENT,
    **{(data, "post_id"): CONTENT for data in ("ReactionData", "ReactionAddedData")},
    **{(data, "group_id"): CONTENT for data in ("ReactionData", "ReactionAddedData")},
    **{(data, "persona_id"): PERSONA for data in ("ReactionData", "ReactionAddedData")},
    ("ReactionAddedData", "created_at"): CONTENT,
    **{
        (data, field): CONTENT for data in ("GroupData", "GroupDeletedData") for field in ("id", "updated_at")
    },
    ("MembershipData", "group_id"): CONTENT,
    ("MembershipData", "persona_id"): PERSONA,
    ("MembershipData", "joined_at"): CONTENT,
    ("MembershipData", "updated_at"): CONTENT,
    ("PersonaData", "id"): PERSONA,
    ("PersonaData", "updated_at"): PERSONA,
    ("PersonaErasedData", "id"): PERSONA,
    **{
        (data, field): MODERATION
        for data in ("ModerationData", "ContentModerationData", "ReportData")
        for field in ("report_id", "action_id", "until")
    },
    # a report's or an action's target, as ReportTarget.id: a post, comment or group (content),
    # or a persona (random), never an account
    **{(data, "target_id"): CONTENT for data in ("ModerationData", "ContentModerationData", "ReportData")},
    **{(data, "subject_id"): PERSONA for data in ("ModerationData", "ContentModerationData", "ReportData")},
    ("ContentModerationData", "post_id"): CONTENT,
    ("WebhookTestData", "webhook_id"): CONTENT,
}


def _event_fields(webhooks: dict[str, Any], schemas: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(schema, property, class) for every id or timestamp of every webhook's body."""

    def walk(name: str, seen: frozenset[str]) -> Iterator[tuple[str, str]]:
        schema = schemas[name]
        for prop_name, prop in schema.get("properties", {}).items():
            if _is_id_or_time(prop_name, prop):
                yield name, prop_name
            for node in (prop, prop.get("items", {}), *prop.get("anyOf", [])):
                ref = node.get("$ref") if isinstance(node, dict) else None
                if ref and (child := ref.rsplit("/", 1)[-1]) not in seen:
                    yield from walk(child, seen | {child})

    for item in webhooks.values():
        for content in item["post"]["requestBody"]["content"].values():
            envelope = content["schema"]["$ref"].rsplit("/", 1)[-1]
            for owner, name in walk(envelope, frozenset({envelope})):
                if owner == envelope:
                    yield owner, name, ENVELOPE if name in ("id", "time") else ""
                else:
                    yield owner, name, EVENT_CLASSIFIED.get((owner, name), "")


def test_every_id_and_timestamp_a_webhook_carries_is_classified_against_the_boundary():
    fields = set(_event_fields(*openapi_webhooks()))
    unclassified = sorted(f"{owner}.{name}" for owner, name, kind in fields if not kind)
    assert not unclassified, f"classify these in EVENT_CLASSIFIED and docs/boundary.md: {unclassified}"
    assert not [f for f in fields if f[2] == ACCOUNT]  # no event names an account
    assert len(fields) >= 40  # the walk reaches every event's data
