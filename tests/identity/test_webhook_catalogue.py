"""Webhooks as the catalogue of public events describes them (domain/catalogue.py,
docs/events.md): real deliveries, sent to a real receiver over HTTP, fit the published schema of
their type field for field, carry the headers it documents, and show a subscriber no more than
every persona of the event's context may read."""

from __future__ import annotations

import uuid
from typing import Any

from jsonschema import Draft202012Validator
from standardwebhooks import Webhook

from domain.catalogue import CONTENT_TYPE, openapi_webhooks
from tests.helpers import admin, auth, create_group, person, unique, with_personal
from tests.identity.test_webhooks import Receiver
from tests.moderation.support import filed, resolve, staff

WEBHOOKS, SCHEMAS = openapi_webhooks()


async def _subscribe(suite: Any, url: str) -> dict[str, Any]:
    """An administrator's endpoint for every public event of both contexts, with its secret
    and the administrator's token."""
    token, _ = await admin(suite, unique("root"))
    body = {"url": url, "event_types": ["*"], "contexts": ["professional", "personal"]}
    resp = await suite.client.post("/api/v1/webhooks", json=body, headers=auth(token))
    assert resp.status_code == 201, resp.text
    return resp.json() | {"admin": token}


async def _flush(suite: Any) -> None:
    await suite.deliver()
    while await suite.identity.state.webhook_relay.deliver_once():
        pass


def _schema_of(event_type: str) -> str:
    ref: str = WEBHOOKS[event_type]["post"]["requestBody"]["content"][CONTENT_TYPE]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


def _checked(message: dict[str, Any], secret: str) -> dict[str, Any]:
    """The event of one delivery, once its signature, its headers and its body have been held
    to the catalogue."""
    headers, body = message["headers"], message["body"]
    event: dict[str, Any] = Webhook(secret).verify(body, headers)
    operation = WEBHOOKS[event["type"]]["post"]
    assert headers["content-type"] == CONTENT_TYPE
    assert {p["name"] for p in operation["parameters"]} <= set(headers)
    name = _schema_of(event["type"])
    validator = Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": {"schemas": SCHEMAS}},
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(event)]
    assert not errors, (event["type"], errors)
    data_schema = SCHEMAS[SCHEMAS[name]["properties"]["data"]["$ref"].rsplit("/", 1)[-1]]
    assert set(event["data"]) == set(data_schema["properties"]), event["type"]  # nothing more, nothing less
    return event


def _events(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    return [_checked(message, secret) for message in receiver.received()]


async def test_every_delivery_fits_the_schema_its_type_publishes(hooks_suite, receiver):
    suite = hooks_suite
    hook = await _subscribe(suite, receiver.url)
    ada, _ = await person(suite.client, unique("ada"))
    bob, bob_id = await person(suite.client, unique("bob"))
    moderator, _ = await staff(suite, "mod")
    await suite.deliver()
    body = {"body": "Launch day #launch", "links": [{"url": "https://example.org/launch", "title": "Launch"}]}
    post = (await suite.client.post("/api/v1/posts", json=body, headers=auth(ada))).json()
    await suite.client.patch(
        f"/api/v1/posts/{post['id']}", json={"body": "Launch day, again"}, headers=auth(ada)
    )
    await suite.deliver()
    comments = f"/api/v1/posts/{post['id']}/comments"
    comment = (await suite.client.post(comments, json={"body": "Well done"}, headers=auth(bob))).json()
    await suite.client.put(f"/api/v1/posts/{post['id']}/reactions/like", headers=auth(bob))
    await suite.client.delete(f"/api/v1/posts/{post['id']}/reactions/like", headers=auth(bob))
    await suite.client.delete(f"{comments}/{comment['id']}", headers=auth(bob))
    group = await create_group(suite.client, ada, unique("open"), visibility="open")
    await suite.deliver()
    await suite.client.put(f"/api/v1/groups/{group['id']}/members/{bob_id}", headers=auth(bob))
    await suite.client.patch(f"/api/v1/groups/{group['id']}", json={"name": "Open Doors"}, headers=auth(ada))
    await suite.deliver()
    reported = (await suite.client.post("/api/v1/posts", json={"body": "Buy now"}, headers=auth(ada))).json()
    await suite.deliver()
    report = await filed(suite, bob, "post", reported["id"])
    assert (await resolve(suite, moderator, report["id"], "hide")).status_code == 200
    await suite.client.delete(f"/api/v1/posts/{post['id']}", headers=auth(ada))
    await suite.client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=auth(hook["admin"]))
    await _flush(suite)

    received = {event["type"] for event in _events(receiver, hook["secret"])}
    expected = {
        "persona.created",
        "post.created",
        "post.updated",
        "post.deleted",
        "comment.created",
        "comment.deleted",
        "reaction.added",
        "reaction.removed",
        "group.created",
        "group.updated",
        "membership.added",
        "moderation.report.created",
        "moderation.report.resolved",
        "moderation.content.hidden",
        "webhook.test",
    }
    assert expected <= received, expected - received
    assert received <= set(WEBHOOKS)


async def test_a_payload_shows_no_more_than_every_persona_of_its_context_reads(hooks_suite, receiver):
    suite = hooks_suite
    hook = await _subscribe(suite, receiver.url)
    ada = await with_personal(suite.client, unique("ada"))
    await suite.deliver()
    closed = await create_group(suite.client, ada["pro"], unique("closed"), visibility="closed")
    secret_group = await create_group(suite.client, ada["pro"], unique("hush"), visibility="secret")
    open_group = await create_group(suite.client, ada["pro"], unique("open"), visibility="open")
    await suite.deliver()
    texts = {
        "everyone": {"body": "For everyone #news"},
        "followers": {"body": "For my followers", "audience": "followers"},
        "open": {"body": "In the open group", "audience": "group", "group_id": open_group["id"]},
        "closed": {"body": "In the closed group", "audience": "group", "group_id": closed["id"]},
        "secret": {"body": "In the secret group", "audience": "group", "group_id": secret_group["id"]},
    }
    posts = {}  # id: name
    for name, body in texts.items():
        resp = await suite.client.post("/api/v1/posts", json=body, headers=auth(ada["pro"]))
        assert resp.status_code == 201, resp.text
        posts[resp.json()["id"]] = name
    home = await suite.client.post("/api/v1/posts", json={"body": "At home"}, headers=auth(ada["personal"]))
    posts[home.json()["id"]] = "personal"
    ids = {name: post_id for post_id, name in posts.items()}
    for name, words in (("everyone", "Open words"), ("closed", "Inside words"), ("secret", "Inside words")):
        resp = await suite.client.post(
            f"/api/v1/posts/{ids[name]}/comments", json={"body": words}, headers=auth(ada["pro"])
        )
        assert resp.status_code == 201, resp.text
    await _flush(suite)
    events = _events(receiver, hook["secret"])

    told = {posts[e["subject"]]: e["data"]["content"] for e in events if e["type"] == "post.created"}
    assert set(told) == {"everyone", "followers", "open", "closed", "secret", "personal"}
    assert told["everyone"]["text"] == "For everyone #news"
    assert told["everyone"]["tags"] == ["news"]
    assert told["everyone"]["author_handle"]
    assert told["open"]["text"] == "In the open group"
    assert {name for name, content in told.items() if content is None} == {
        "followers",
        "closed",
        "secret",
        "personal",
    }
    comments = {posts[e["subject"]]: e["data"]["content"] for e in events if e["type"] == "comment.created"}
    assert comments["everyone"]["text"] == "Open words"
    assert comments["closed"] is None and comments["secret"] is None
    groups = {e["data"]["id"]: e["data"] for e in events if e["type"] == "group.created"}
    assert groups[secret_group["id"]]["name"] is None and groups[secret_group["id"]]["handle"] is None
    assert groups[closed["id"]]["name"] == closed["name"]
    personas = {e["data"]["id"]: e["data"] for e in events if e["type"] == "persona.created"}
    assert personas[ada["pro_id"]]["handle"]
    assert personas[ada["personal_id"]]["handle"] is None
    assert personas[ada["personal_id"]]["display_name"] is None
    for message in receiver.received():
        for words in ("Inside words", "In the closed group", "In the secret group", "At home", "at home"):
            assert words not in message["body"]
        assert '"post_author_id"' not in message["body"]  # for groups' health alone


async def test_an_event_that_does_not_fit_its_type_reaches_no_webhook_and_holds_up_nothing(
    hooks_suite, receiver, caplog
):
    suite = hooks_suite
    hook = await _subscribe(suite, receiver.url)
    ada, _ = await person(suite.client, unique("ada"))
    await suite.deliver()
    state = suite.feed.state
    odd = str(uuid.uuid4())
    async with state.database.sessionmaker() as session:
        # a publisher's slip: the text outside ``content``, no audience
        data = {"id": odd, "author_id": odd, "context": "professional", "body": "Unvetted words"}
        await state.outbox.publish(session, "post.created", odd, data)
        await session.commit()
    after = await suite.client.post("/api/v1/posts", json={"body": "Later"}, headers=auth(ada))
    await _flush(suite)
    events = _events(receiver, hook["secret"])
    assert [e["subject"] for e in events if e["type"] == "post.created"] == [after.json()["id"]]
    assert "Unvetted words" not in receiver.file.read_text()
    assert "does not fit its catalogued model" in caplog.text
