"""The catalogue of public events (domain/catalogue.py): a valid OpenAPI 3.1 ``webhooks`` object
with schemas named for people and bounded in size, every public type the services publish in
it, what a subscriber may not read withheld, and the stream's events named as feed sends them.
Real deliveries are held to it in tests/identity/test_webhook_catalogue.py."""

from __future__ import annotations

import ast
import re
import uuid
from pathlib import Path
from typing import Any, get_args

import pytest
from openapi_spec_validator import validate

from domain.catalogue import (
    CATALOGUE,
    STREAM_EVENTS,
    NotCatalogued,
    openapi_webhooks,
    stream_events,
    webhook_data,
)
from services.feed.schemas import StreamEvent
from services.moderation import actions

SERVICES = Path(__file__).resolve().parents[2] / "services"
WEBHOOKS, SCHEMAS = openapi_webhooks()
NOW = "2026-01-05T10:00:00+00:00"


def _walk(schema: Any) -> Any:
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from _walk(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _walk(value)


def test_the_webhooks_object_is_valid_openapi_3_1_and_refers_only_to_its_schemas():
    document = {
        "openapi": "3.1.0",
        "info": {"title": "events", "version": "1"},
        "paths": {},
        "webhooks": WEBHOOKS,
        "components": {"schemas": SCHEMAS},
    }
    validate(document)
    refs = {node["$ref"] for node in _walk([WEBHOOKS, SCHEMAS]) if "$ref" in node}
    assert {ref.rsplit("/", 1)[-1] for ref in refs} <= set(SCHEMAS)
    assert set(WEBHOOKS) == set(CATALOGUE)
    ids = [item["post"]["operationId"] for item in WEBHOOKS.values()]
    assert len(set(ids)) == len(ids)
    for item in WEBHOOKS.values():
        headers = {p["name"] for p in item["post"]["parameters"] if p["in"] == "header"}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}


def test_schema_names_are_made_for_people():
    for name, schema in SCHEMAS.items():
        assert re.fullmatch(r"[A-Z][A-Za-z]+(Event|Data|Content|Link)", name), name
        assert schema.get("title") == name
    assert "PostCreatedEvent" in SCHEMAS and "PostData" in SCHEMAS


def test_every_string_and_list_a_subscriber_receives_is_bounded():
    """A payload's size is bounded: its text as the post's own limits bound it."""
    unbounded = []
    for name, schema in SCHEMAS.items():
        for node in _walk(schema):
            kind = node.get("type")
            if kind == "string" and not {"maxLength", "format", "const", "enum", "pattern"} & set(node):
                unbounded.append((name, node.get("title")))
            if kind == "array" and "maxItems" not in node:
                unbounded.append((name, node.get("title")))
    assert not unbounded
    assert SCHEMAS["PostContent"]["properties"]["text"]["maxLength"] == 5000
    assert SCHEMAS["CommentContent"]["properties"]["text"]["maxLength"] == 2000


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _named_type(node: ast.AST) -> set[str]:
    """The event type ``node`` names, if it is one of the three ways to publish one."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "publish":
        return {t for t in map(_text, node.args[1:2]) if t}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "EventIn":
        return {t for k in node.keywords if k.arg == "type" and (t := _text(k.value))}
    if isinstance(node, ast.Tuple) and len(node.elts) == 3 and (head := _text(node.elts[0])):
        subject = node.elts[1]
        if isinstance(subject, ast.Call) and isinstance(subject.func, ast.Name) and subject.func.id == "str":
            return {head}
    return set()


def _published_types() -> set[str]:
    """Every event type the services' code publishes by name: ``publish(session, "<type>", …)``,
    ``("<type>", str(…), …)`` in ``publish_many``, ``EventIn(type="<type>")``; and moderation's,
    which it builds from its tables."""
    found: set[str] = set()
    for path in SERVICES.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            found |= _named_type(node)
    found |= {f"moderation.content.{e}" for e in actions._CONTENT_EVENTS.values()}
    found |= {f"moderation.group.{e}" for e in actions._GROUP_EVENTS.values()}
    found |= {f"moderation.persona.{e}" for e in actions._PERSONA_EVENTS.values()}
    found |= set(actions._UNDO.values())
    return found


def test_every_public_event_the_services_publish_is_catalogued():
    published = _published_types()
    assert len(published) > 30  # the scan finds the services' events
    missing = sorted(t for t in published if not t.startswith("internal.") and t not in CATALOGUE)
    assert not missing, f"add these to domain/catalogue.py and docs/events.md: {missing}"
    assert not [t for t in CATALOGUE if t.startswith("internal.")]


def test_internal_and_unknown_types_reach_no_webhook():
    for event_type in ("internal.records.post", "internal.moderation.audit", "post.exploded"):
        with pytest.raises(NotCatalogued):
            webhook_data(event_type, {})


def _post(context: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "author_id": str(uuid.uuid4()),
        "context": context,
        "audience": "organisation",
        "group_id": None,
        "created_at": NOW,
        "post_author_id": str(uuid.uuid4()),
        "content": {"author_handle": "ada", "text": "Hello", "tags": [], "links": [], "media_ids": []},
    }


def test_what_only_some_may_read_is_withheld_and_what_is_for_the_services_alone_is_dropped():
    assert webhook_data("post.created", _post("professional"))["content"]["text"] == "Hello"
    assert "post_author_id" not in webhook_data("post.created", _post("professional"))
    assert webhook_data("post.created", _post("personal"))["content"] is None
    persona = {"id": str(uuid.uuid4()), "handle": "ada", "display_name": "Ada", "status": "active"}
    for context, discoverable, shown in (
        ("professional", True, True),
        ("professional", False, False),
        ("personal", True, False),
    ):
        data = {**persona, "context": context, "discoverable": discoverable, "updated_at": None}
        told = webhook_data("persona.updated", data)
        assert (told["handle"] == "ada" and told["display_name"] == "Ada") is shown
        assert shown or (told["handle"] is None and told["display_name"] is None)
    group = {
        "id": str(uuid.uuid4()),
        "context": "professional",
        "handle": "hush",
        "name": "Hush",
        "archived": False,
        "moderation": None,
        "updated_at": NOW,
    }
    assert webhook_data("group.created", {**group, "visibility": "closed"})["name"] == "Hush"
    assert webhook_data("group.created", {**group, "visibility": "secret"})["name"] is None
    assert webhook_data("group.created", {**group, "visibility": "secret"})["handle"] is None


def test_the_stream_events_are_those_feed_sends():
    members = get_args(get_args(StreamEvent)[0])
    sent = {get_args(m.model_fields["event"].annotation)[0]: m for m in members}
    assert {e.event for e in STREAM_EVENTS} == set(sent)
    for event in STREAM_EVENTS:
        model = sent[event.event]
        assert model.__name__ == event.schema
        # named as the merged document publishes it: `PostPublic` as `Post` (decision 0037)
        assert model.model_fields["data"].annotation.__name__.removesuffix("Public") == event.data
        assert ("id" in model.model_fields) is event.has_id
    assert stream_events()["post"] == {"$ref": "#/components/schemas/PostEvent"}
