"""The persona boundary in moderation (docs/boundary.md): two people with both personas are
reported and acted on in both contexts, and then no answer to a moderator, no row of
moderation's tables or outbox and no webhook delivery holds an account id or an email, and
none holds a personal persona together with its professional twin. Moderation's published
schemas have no field for either."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.identity.models import WebhookDelivery
from services.moderation.models import ModerationModel
from tests.helpers import auth, with_personal
from tests.moderation.support import NOTICES, QUEUE, comment, filed, group, post, resolve, staff
from tests.suite import Suite, build_suite

HOOKS = {"webhook_allowed_hosts": ["127.0.0.1"], "webhook_allow_http": True}


@pytest.fixture
async def hooks_suite(database_urls: dict[str, str]) -> AsyncIterator[Suite]:
    async with build_suite(database_urls, identity=HOOKS) as built:
        yield built


class Secrets:
    """What must never show: each account's id and address, and any two personas of one
    account side by side."""

    def __init__(self) -> None:
        self.accounts: list[str] = []
        self.pairs: list[tuple[str, str]] = []

    def check(self, where: str, text: str, *, pairs: bool = True) -> None:
        for secret in self.accounts:
            assert secret.lower() not in text.lower(), (where, secret, text[:2000])
        for pro, personal in self.pairs if pairs else ():
            assert not (pro in text and personal in text), (where, pro, personal, text[:2000])


async def _person(suite: Suite, handle: str, secrets: Secrets) -> dict[str, Any]:
    made = await with_personal(suite.client, handle)
    me = (await suite.client.get("/api/v1/me", headers=auth(made["pro"]))).json()
    secrets.accounts += [me["account_id"], me["email"]]
    secrets.pairs.append((made["pro_id"], made["personal_id"]))
    return made


async def _walk_tables(suite: Suite) -> AsyncIterator[tuple[str, str]]:
    async with suite.moderation.state.database.sessionmaker() as session:
        for table in ModerationModel.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                yield f"moderation.{table.name}", json.dumps([str(v) for v in row])


async def test_nothing_moderation_keeps_shows_or_sends_pairs_a_person_or_names_an_account(hooks_suite):
    suite = hooks_suite
    secrets = Secrets()
    ann = await _person(suite, "ann", secrets)
    ben = await _person(suite, "ben", secrets)
    await suite.deliver()
    mod, _ = await staff(suite, "mod")
    other, _ = await staff(suite, "other")
    root, _ = await staff(suite, "root", "admin")
    hook = await suite.client.post(
        "/api/v1/webhooks",
        json={
            "url": "http://127.0.0.1:9/hooks",
            "event_types": ["*"],
            "contexts": ["professional", "personal"],
        },
        headers=auth(root),
    )
    assert hook.status_code == 201, hook.text

    seen: list[tuple[str, str]] = []

    async def moderator_reads(path: str, token: str = mod) -> Any:
        resp = await suite.client.get(path, headers=auth(token))
        assert resp.status_code == 200, resp.text
        seen.append((path, resp.text))
        return resp.json()

    async def act(report: dict[str, Any], action: str, **fields: Any) -> None:
        resp = await resolve(suite, mod, report["id"], action, **fields)
        assert resp.status_code == 200, resp.text
        seen.append((f"resolve {action}", resp.text))

    until = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    for context in ("pro", "personal"):
        a, b = ann[context], ben[context]
        a_id, b_id = ann[f"{context}_id"], ben[f"{context}_id"]
        written = await post(suite, a, f"A {context} post that breaks the rules")
        reply = await comment(suite, a, written["id"], f"A {context} comment too")
        made = await group(suite, a, f"club{context}")
        await act(await filed(suite, b, "post", written["id"]), "hide")
        await act(await filed(suite, b, "comment", reply["id"]), "remove")
        await act(await filed(suite, b, "group", made["id"]), "hide")
        await act(await filed(suite, b, "persona", a_id), "limit", until=until)
        await act(await filed(suite, a, "persona", b_id), "warn")
        await act(await filed(suite, a, "persona", b_id, category="harassment"), "suspend_persona")
        await suite.deliver()
        notices = (await suite.client.get(NOTICES, headers=auth(a))).json()["items"]
        appealed = await suite.client.post(
            f"{NOTICES}/{notices[0]['id']}/appeal", json={"text": "Please look again."}, headers=auth(a)
        )
        assert appealed.status_code == 201, appealed.text
        reverted = await resolve(suite, other, appealed.json()["appeal"]["id"], "revert")
        assert reverted.status_code == 200, reverted.text
        seen.append(("revert", reverted.text))
    await suite.deliver()

    # the queue lists both contexts' reports side by side: each item is held to the rule
    listing = await suite.client.get(QUEUE, params={"limit": 100}, headers=auth(mod))
    queue = listing.json()
    assert len(queue["items"]) == 14
    for item in queue["items"]:
        secrets.check("queue item", json.dumps(item))
        await moderator_reads(f"{QUEUE}/{item['id']}")
    secrets.check("queue", listing.text, pairs=False)
    for where, text in seen:
        secrets.check(where, text)

    async with suite.moderation.state.database.sessionmaker() as session:
        table = ModerationModel.metadata.tables["outbox_event"]
        events = (await session.execute(select(table.c.type, table.c.subject, table.c.data))).all()
    assert {e.type.split(".")[0] for e in events} == {"moderation", "internal"}
    for event in events:
        secrets.check(f"outbox {event.type}", f"{event.subject} {event.data}")
    async for where, text in _walk_tables(suite):
        secrets.check(where, text)

    async with suite.identity.state.database.sessionmaker() as session:
        deliveries = (await session.scalars(select(WebhookDelivery))).all()
    moderation_deliveries = [d for d in deliveries if d.event_type.startswith("moderation.")]
    assert {json.loads(d.payload)["data"]["context"] for d in moderation_deliveries} == {
        "professional",
        "personal",
    }
    assert not [d for d in deliveries if d.event_type.startswith("internal.")]
    for delivery in moderation_deliveries:
        secrets.check(f"webhook {delivery.event_type}", delivery.payload)


FORBIDDEN_FIELDS = {"email", "account_id", "account", "twin", "twin_id", "professional_id", "personal_id"}


def _fields(schema: Any) -> Iterable[str]:
    if isinstance(schema, dict):
        for name, value in (schema.get("properties") or {}).items():
            yield name
            yield from _fields(value)
        for value in schema.values():
            if isinstance(value, dict | list):
                yield from _fields(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _fields(value)


async def test_moderation_schemas_and_tables_have_no_field_for_an_account_or_a_twin(suite):
    document = (await suite.client.get("http://moderation/openapi.json")).json()
    assert document["paths"], "moderation publishes its operations"
    assert not FORBIDDEN_FIELDS & set(_fields(document["components"]["schemas"]))
    for table in ModerationModel.metadata.sorted_tables:
        assert not FORBIDDEN_FIELDS & {c.name for c in table.columns}, table.name
