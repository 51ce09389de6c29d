"""Webhooks: signed per Standard Webhooks, CloudEvents-shaped, never across the context
boundary, and nothing lost through a receiver outage."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from standardwebhooks import Webhook

from kit.outbox import recorded
from services.identity.events import handlers
from services.identity.models import WebhookDelivery
from tests.helpers import admin, auth, create_group, person, sql_of, with_personal
from tests.processes import Process, free_port
from tests.suite import build_suite

HERE = Path(__file__).parent
HOOKS = {"webhook_allowed_hosts": ["127.0.0.1"], "webhook_allow_http": True}


class Receiver:
    """tests/identity/webhook_receiver.py in its own process: it writes what it receives to a
    file, and can be stopped and started again on the same port (an outage)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.file = folder / "received.jsonl"
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        args = [sys.executable, str(HERE / "webhook_receiver.py"), str(self.port), str(self.file)]
        self.process = Process(args, name="webhook receiver").start()
        self.process.wait_until_listening(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)
            self.process = None

    def received(self) -> list[dict]:
        if not self.file.exists():
            return []
        return [json.loads(line) for line in self.file.read_text().splitlines()]


async def _register(suite, url: str, **fields) -> dict:
    token, _ = await admin(suite)
    body = {"url": url, "event_types": ["post.*", "group.*", "membership.*"], **fields}
    resp = await suite.client.post("/api/v1/webhooks", json=body, headers=auth(token))
    assert resp.status_code == 201, resp.text
    return resp.json() | {"admin": token}


async def _flush(suite) -> None:
    await suite.deliver()
    while await suite.identity.state.webhook_relay.deliver_once():
        pass


async def test_events_arrive_signed_and_shaped_as_cloud_events(hooks_suite, receiver):
    suite = hooks_suite
    hook = await _register(suite, receiver.url)
    assert hook["secret"].startswith("whsec_")
    got = (await suite.client.get(f"/api/v1/webhooks/{hook['id']}", headers=auth(hook["admin"]))).json()
    assert "secret" not in got
    token, ada_id = await person(suite.client, "ada")
    await suite.deliver()
    post = (await suite.client.post("/api/v1/posts", json={"body": "Hello"}, headers=auth(token))).json()
    await _flush(suite)
    [message] = [m for m in receiver.received() if json.loads(m["body"])["type"] == "post.created"]
    event = Webhook(hook["secret"]).verify(message["body"], message["headers"])
    assert event["specversion"] == "1.0"
    assert event["subject"] == post["id"]
    assert event["data"]["author_id"] == ada_id
    assert message["headers"]["webhook-id"].startswith("msg_")
    with pytest.raises(Exception):  # noqa: B017,PT011 - any verification failure will do
        Webhook(hook["secret"]).verify(message["body"].replace("Hello", "Bye") + " ", message["headers"])
    assert "agency.example" not in message["body"]


async def test_personal_context_events_stay_out_unless_an_admin_allows_them(hooks_suite, receiver):
    suite = hooks_suite
    pro_only = await _register(suite, receiver.url)
    ada = await with_personal(suite.client, "ada")
    await suite.deliver()
    await suite.client.post("/api/v1/posts", json={"body": "work"}, headers=auth(ada["pro"]))
    await suite.client.post("/api/v1/posts", json={"body": "home"}, headers=auth(ada["personal"]))
    await _flush(suite)
    contexts = {json.loads(m["body"])["data"].get("context") for m in receiver.received()}
    assert contexts == {"professional"}
    both = await suite.client.patch(
        f"/api/v1/webhooks/{pro_only['id']}",
        json={"contexts": ["professional", "personal"]},
        headers=auth(pro_only["admin"]),
    )
    assert both.status_code == 200
    await suite.client.post("/api/v1/posts", json={"body": "home again"}, headers=auth(ada["personal"]))
    await _flush(suite)
    contexts = {json.loads(m["body"])["data"].get("context") for m in receiver.received()}
    assert contexts == {"professional", "personal"}


async def test_nothing_is_lost_and_order_per_resource_holds_through_an_outage(hooks_suite, receiver):
    suite = hooks_suite
    hook = await _register(suite, receiver.url)
    owner, _ = await person(suite.client, "ada")
    await suite.deliver()
    group = await create_group(suite.client, owner, "cloud")
    receiver.stop()
    joiners = []
    for i in range(5):
        token, persona_id = await person(suite.client, f"member_{i}")
        await suite.deliver()
        joiners.append(persona_id)
        assert (
            await suite.client.put(f"/api/v1/groups/{group['id']}/members/{persona_id}", headers=auth(token))
        ).status_code == 201
    await _flush(suite)  # every attempt fails: the receiver is down
    log = (
        await suite.client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=auth(hook["admin"]))
    ).json()["items"]
    assert log and all(d["status"] == "pending" for d in log)
    assert any(d["attempt_count"] >= 1 for d in log)
    receiver.start()
    async with suite.identity.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(WebhookDelivery).values(next_attempt_at=WebhookDelivery.created_at)
        )  # time passes
    await _flush(suite)
    events = [json.loads(m["body"]) for m in receiver.received()]
    about_group = [e for e in events if e["subject"] == group["id"]]
    assert [e["type"] for e in about_group] == ["group.created", "membership.added"] + [
        "membership.added"
    ] * 5
    assert [e["data"]["persona_id"] for e in about_group[2:]] == joiners
    assert len({e["id"] for e in events}) == len(events)  # each delivered once


async def test_failed_delivery_can_be_redelivered(database_urls, tmp_path):
    overrides = {**HOOKS, "webhook_max_attempts": 1}
    async with build_suite(database_urls, identity=overrides) as suite:
        receiver = Receiver(tmp_path)
        hook = await _register(suite, receiver.url)
        assert (
            await suite.client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=auth(hook["admin"]))
        ).status_code == 202
        await _flush(suite)
        [failed] = (
            await suite.client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=auth(hook["admin"]))
        ).json()["items"]
        assert failed["status"] == "failed" and failed["event_type"] == "webhook.test"
        receiver.start()
        try:
            resp = await suite.client.post(
                f"/api/v1/webhooks/{hook['id']}/deliveries/{failed['id']}/redeliver",
                headers=auth(hook["admin"]),
            )
            assert resp.status_code == 202
            await _flush(suite)
            [done] = (
                await suite.client.get(
                    f"/api/v1/webhooks/{hook['id']}/deliveries", headers=auth(hook["admin"])
                )
            ).json()["items"]
            assert done["status"] == "delivered"
            assert [json.loads(m["body"])["type"] for m in receiver.received()] == ["webhook.test"]
        finally:
            receiver.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.org/x",
        "https://user:pass@hooks.example.org/x",
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1:8443/x",
        "https://localhost/x",
        "https://10.1.2.3/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
    ],
)
async def test_webhook_urls_cannot_reach_internal_addresses(suite, url):
    token, _ = await admin(suite)
    resp = await suite.client.post(
        "/api/v1/webhooks", json={"url": url, "event_types": ["*"]}, headers=auth(token)
    )
    assert resp.status_code == 422, resp.text


async def test_allow_list_restricts_hosts(hooks_suite):
    token, _ = await admin(hooks_suite)
    resp = await hooks_suite.client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.org/x", "event_types": ["*"]},
        headers=auth(token),
    )
    assert resp.status_code == 422


async def test_who_may_manage_webhooks(suite):
    root, _ = await admin(suite)
    plain, _ = await person(suite.client, "ada")
    body = {"url": "https://hooks.example.org/x", "event_types": ["post.created"]}
    assert (await suite.client.post("/api/v1/webhooks", json=body, headers=auth(plain))).status_code == 403

    async def client_token(scopes):
        created = (
            await suite.client.post(
                "/api/v1/admin/clients", json={"name": "int", "scopes": scopes}, headers=auth(root)
            )
        ).json()
        return (
            await suite.client.post(
                "/api/v1/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": created["client_id"],
                    "client_secret": created["client_secret"],
                },
            )
        ).json()["access_token"]

    hooks = await client_token(["webhooks"])
    scim = await client_token(["scim"])
    assert (await suite.client.post("/api/v1/webhooks", json=body, headers=auth(scim))).status_code == 403
    mine = await suite.client.post("/api/v1/webhooks", json=body, headers=auth(hooks))
    assert mine.status_code == 201
    personal = await suite.client.post(
        "/api/v1/webhooks", json=body | {"contexts": ["personal"]}, headers=auth(hooks)
    )
    assert personal.status_code == 403
    # a client sees only its own endpoints; an administrator sees all
    admins = await suite.client.post("/api/v1/webhooks", json=body, headers=auth(root))
    listed = (await suite.client.get("/api/v1/webhooks", headers=auth(hooks))).json()["items"]
    assert [w["id"] for w in listed] == [mine.json()["id"]]
    assert (
        await suite.client.get(f"/api/v1/webhooks/{admins.json()['id']}", headers=auth(hooks))
    ).status_code == 404
    assert len((await suite.client.get("/api/v1/webhooks", headers=auth(root))).json()["items"]) == 2


@pytest.mark.parametrize("field", ["url", "event_types", "contexts", "active"])
async def test_a_webhook_field_that_cannot_be_empty_refuses_null(suite, field):
    token = (await admin(suite))[0]
    created = await suite.client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.org/x", "event_types": ["*"]},
        headers=auth(token),
    )
    assert created.status_code == 201, created.text
    resp = await suite.client.patch(
        f"/api/v1/webhooks/{created.json()['id']}", json={field: None}, headers=auth(token)
    )
    assert resp.status_code == 422, resp.text
    assert field in resp.text
    cleared = await suite.client.patch(
        f"/api/v1/webhooks/{created.json()['id']}", json={"description": None}, headers=auth(token)
    )
    assert cleared.status_code == 200, cleared.text


@pytest.mark.parametrize(
    ("pattern", "status"),
    [
        ("moderation.content.hidden", 201),
        ("moderation.content.*", 201),
        ("post.*", 201),
        ("*", 201),
        ("post", 422),
        ("post..created", 422),
        ("*.created", 422),
    ],
)
async def test_an_event_type_pattern_names_a_type_or_a_family_at_any_level(suite, pattern, status):
    token, _ = await admin(suite)
    body = {"url": "https://hooks.example.org/x", "event_types": [pattern]}
    resp = await suite.client.post("/api/v1/webhooks", json=body, headers=auth(token))
    assert resp.status_code == status, resp.text


def _as_sent(row) -> dict:
    """A row of feed's outbox as its relay sends the event."""
    return {
        "id": str(row.id),
        "type": row.type,
        "source": "feed",
        "subject": row.subject,
        "time": row.occurred_at.isoformat(),
        "data": json.loads(row.data),
    }


async def test_an_event_only_webhooks_want_is_enqueued_once_and_not_recorded(hooks_suite, receiver):
    """Identity applies feed's post events only for its webhooks, whose deliveries are keyed by
    endpoint and event: applying one again adds nothing, so no processed-event row is kept for
    it (``kit.outbox.recorded``); events with a handler of their own still leave one."""
    suite = hooks_suite
    await _register(suite, receiver.url)
    token, _ = await person(suite.client, "ada")
    await suite.deliver()
    post = (await suite.client.post("/api/v1/posts", json={"body": "Hello"}, headers=auth(token))).json()
    await suite.deliver()
    tables = suite.feed.state.outbox.tables
    async with suite.feed.state.database.sessionmaker() as session:
        row = (
            await session.execute(
                select(tables.event).where(
                    tables.event.c.type == "post.created", tables.event.c.subject == post["id"]
                )
            )
        ).one()
    event = _as_sent(row)
    secret = suite.identity.state.settings.internal_token.get_secret_value()
    again = await suite.client.post(
        "http://identity/internal/events", json={"events": [event]}, headers=auth(secret)
    )
    assert again.status_code == 200, again.text
    processed = suite.identity.state.outbox.tables.processed
    async with suite.identity.state.database.sessionmaker() as session:
        deliveries = await session.scalar(
            select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.event_id == row.id)
        )
        kept = await session.scalar(
            select(func.count()).select_from(processed).where(processed.c.id == row.id)
        )
    assert deliveries == 1
    assert kept == 0
    assert not recorded(handlers, "post.created")
    assert recorded(handlers, "moderation.persona.suspended")  # a handler of its own as well


async def test_an_internal_event_costs_identity_no_statement(hooks_suite, receiver):
    """No endpoint receives an ``internal.*`` event (``webhooks.wants``): identity, which takes
    every event for its webhooks, applies one without reading the endpoints, or anything, while
    a public event of the same post reads them."""
    suite = hooks_suite
    await _register(suite, receiver.url)
    token, _ = await person(suite.client, "ada")
    await suite.deliver()
    await suite.client.post("/api/v1/posts", json={"body": "Hello"}, headers=auth(token))
    tables = suite.feed.state.outbox.tables
    async with suite.feed.state.database.sessionmaker() as session:
        rows = (
            await session.execute(select(tables.event).order_by(tables.event.c.seq.desc()).limit(2))
        ).all()
    assert {row.type for row in rows} == {"post.created", "internal.records.post"}
    secret = suite.identity.state.settings.internal_token.get_secret_value()
    for row in rows:
        event = _as_sent(row)
        with sql_of(suite.identity) as seen:
            answer = await suite.client.post(
                "http://identity/internal/events", json={"events": [event]}, headers=auth(secret)
            )
        assert answer.status_code == 200, answer.text
        if row.type.startswith("internal."):
            assert seen == [], seen
        else:
            assert any("webhook_endpoint" in statement for statement in seen), seen


async def test_a_delivery_of_several_events_reads_the_endpoints_once(hooks_suite, receiver):
    """The active endpoints are read once for all the events of one delivery (decision 0050),
    and every event still gets its webhook delivery."""
    suite = hooks_suite
    await _register(suite, receiver.url)
    token, _ = await person(suite.client, "ada")
    await suite.deliver()
    for body in ("One", "Two", "Three"):
        await suite.client.post("/api/v1/posts", json={"body": body}, headers=auth(token))
    tables = suite.feed.state.outbox.tables
    async with suite.feed.state.database.sessionmaker() as session:
        rows = (
            await session.execute(select(tables.event).where(tables.event.c.type == "post.created"))
        ).all()
    assert len(rows) == 3
    secret = suite.identity.state.settings.internal_token.get_secret_value()
    with sql_of(suite.identity) as seen:
        answer = await suite.client.post(
            "http://identity/internal/events",
            json={"events": [_as_sent(row) for row in rows]},
            headers=auth(secret),
        )
    assert answer.status_code == 200, answer.text
    reads = [s for s in seen if s.lstrip().upper().startswith("SELECT") and "FROM webhook_endpoint" in s]
    assert len(reads) == 1, seen
    async with suite.identity.state.database.sessionmaker() as session:
        enqueued = await session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.event_id.in_([row.id for row in rows]))  # type: ignore[attr-defined]
        )
    assert enqueued == 3
