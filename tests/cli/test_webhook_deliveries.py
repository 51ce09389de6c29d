"""webhooks deliveries | redeliver | delete: an endpoint's delivery log, a delivery sent again
to a real receiver, and the endpoint's removal."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable

import pytest
from rich.console import Console

from socialctl import api, cli
from tests.cli.conftest import client_login, user_login
from tests.cli.stub_server import StubServer
from tests.suite import build_suite

# a receiver on this machine, over http; one attempt, so that a refusal fails the delivery
HOOKS = {"webhook_allowed_hosts": ["127.0.0.1"], "webhook_allow_http": True, "webhook_max_attempts": 1}


def receiver(statuses: Iterable[int | None] = ()) -> StubServer:
    """A webhook receiver that closes each connection after answering: identity's delivery
    client keeps pooled connections open until its process ends, which the in-process suite's
    end would report as sockets left open."""
    return StubServer(statuses=statuses, persistent=False)


@pytest.fixture
async def suite(database_urls):
    async with build_suite(database_urls, identity=HOOKS) as built:
        yield built


async def add_endpoint(invoke, url: str) -> str:
    added = await invoke("webhooks", "add", url, "--event", "*", "--show-secret", "--json")
    assert added.exit_code == 0, added.output
    webhook_id: str = json.loads(added.stdout)["id"]
    return webhook_id


async def queue_tests(invoke, webhook_id: str, count: int) -> list[str]:
    """``count`` webhook.test events through the command; their event ids, oldest first."""
    events = []
    for _ in range(count):
        tested = await invoke("webhooks", "test", webhook_id)
        assert tested.exit_code == 0, tested.output
        events.append(tested.stdout.split()[3].rstrip("."))
    return events


def rows(stdout: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in stdout.splitlines()
        if line.startswith("│")
    ]


async def test_deliveries_are_listed_newest_first_with_limit_and_all(suite, invoke, bridge, monkeypatch):
    await client_login(suite, invoke, ("webhooks",))
    async with receiver() as hooks:
        webhook_id = await add_endpoint(invoke, f"{hooks.url}/hooks")
        events = await queue_tests(invoke, webhook_id, 5)
        listed = await invoke("webhooks", "deliveries", webhook_id)
        assert listed.exit_code == 0, listed.output
        table = rows(listed.stdout)
        assert [row[1] for row in table] == events[::-1]
        assert [int(row[0]) for row in table] == sorted((int(row[0]) for row in table), reverse=True)
        assert all(row[2:5] == ["webhook.test", "pending", "0"] for row in table)
        assert "newest" not in listed.stdout

        monkeypatch.setattr(api, "MAX_PAGE", 2)
        monkeypatch.setattr(cli, "out", Console(width=60, highlight=False, soft_wrap=True))
        sent = len(bridge.requests)
        newest = await invoke("webhooks", "deliveries", webhook_id, "--limit", "3")
        assert newest.exit_code == 0, newest.output
        for event in events[2:]:
            assert event in newest.stdout  # whole, in a narrow terminal
        assert not any(event in newest.stdout for event in events[:2])
        assert "The newest 3 shown; --limit N shows more, --all every one." in newest.stdout
        pages = bridge.requests[sent:]
        assert [p.url.params["limit"] for p in pages] == ["2", "2"] and "cursor" in pages[1].url.params

        every = await invoke("webhooks", "deliveries", webhook_id, "--all", "--json")
        assert every.exit_code == 0, every.output
        assert [d["event_id"] for d in json.loads(every.stdout)] == events[::-1]
        assert len(bridge.requests) - sent == 2 + 3
        assert hooks.requests == []  # nothing was delivered: the relay did not run


async def test_a_failed_delivery_is_sent_again(suite, invoke):
    await client_login(suite, invoke, ("webhooks",))
    async with receiver(statuses=[503, 200]) as hooks:
        webhook_id = await add_endpoint(invoke, f"{hooks.url}/hooks")
        (event,) = await queue_tests(invoke, webhook_id, 1)
        await suite.identity.state.webhook_relay.deliver_once()
        failed = await invoke("webhooks", "deliveries", webhook_id)
        assert failed.exit_code == 0, failed.output
        ((delivery_id, shown_event, kind, status, attempts, answer, _),) = rows(failed.stdout)
        assert (shown_event, kind, status, attempts, answer) == (
            event,
            "webhook.test",
            "failed",
            "1",
            "HTTP 503",
        )

        again = await invoke("webhooks", "redeliver", webhook_id, delivery_id)
        assert again.exit_code == 0, again.output
        assert again.stdout.strip() == f"Queued delivery {delivery_id} of webhook {webhook_id} again."
        queued = json.loads((await invoke("webhooks", "deliveries", webhook_id, "--json")).stdout)
        assert [(d["status"], d["attempt_count"]) for d in queued] == [("pending", 0)]
        assert await suite.identity.state.webhook_relay.deliver_once() == 1
        delivered = json.loads((await invoke("webhooks", "deliveries", webhook_id, "--json")).stdout)
    assert [(d["status"], d["last_status_code"]) for d in delivered] == [("delivered", 200)]
    first, second = hooks.requests
    assert first.body == second.body and first.headers["webhook-id"] == second.headers["webhook-id"]


async def test_delete_removes_the_endpoint_and_unknown_ids_are_404(suite, invoke):
    await client_login(suite, invoke, ("webhooks",))
    async with receiver() as hooks:
        webhook_id = await add_endpoint(invoke, f"{hooks.url}/hooks")
        await queue_tests(invoke, webhook_id, 1)
        delivery_id = json.loads((await invoke("webhooks", "deliveries", webhook_id, "--json")).stdout)[0][
            "id"
        ]
        unknown_delivery = await invoke("webhooks", "redeliver", webhook_id, str(delivery_id + 1000))
        assert unknown_delivery.exit_code == 1 and unknown_delivery.stderr.startswith(
            "Error: Not Found (404)"
        )

        removed = await invoke("webhooks", "delete", webhook_id)
        assert removed.exit_code == 0 and removed.stdout.strip() == f"Removed webhook {webhook_id}."
        assert webhook_id not in (await invoke("webhooks", "list")).stdout
        for args in (
            ("delete", webhook_id),
            ("deliveries", webhook_id),
            ("redeliver", webhook_id, str(delivery_id)),
            ("deliveries", str(uuid.uuid4())),
        ):
            result = await invoke("webhooks", *args)
            assert result.exit_code == 1 and result.stderr.startswith("Error: Not Found (404)"), (
                args,
                result.output,
            )
        malformed = await invoke("webhooks", "delete", "not-an-id")
        assert malformed.exit_code == 1 and malformed.stderr.startswith("Error: Unprocessable Content (422)")
        assert (await invoke("webhooks", "redeliver", webhook_id, "0")).exit_code == 2
        await suite.identity.state.webhook_relay.deliver_once()
    assert hooks.requests == []  # a removed endpoint's pending delivery is never sent


async def test_another_clients_endpoint_is_404_and_a_person_without_a_role_403(suite, invoke):
    await client_login(suite, invoke, ("webhooks",))
    async with receiver() as hooks:
        webhook_id = await add_endpoint(invoke, f"{hooks.url}/hooks")
        await queue_tests(invoke, webhook_id, 1)
        delivery_id = json.loads((await invoke("webhooks", "deliveries", webhook_id, "--json")).stdout)[0][
            "id"
        ]
        await client_login(suite, invoke, ("webhooks",))  # another client
        for args in (
            ("deliveries", webhook_id),
            ("redeliver", webhook_id, str(delivery_id)),
            ("delete", webhook_id),
        ):
            result = await invoke("webhooks", *args)
            assert result.exit_code == 1 and result.stderr.startswith("Error: Not Found (404)"), (
                args,
                result.output,
            )
        await user_login(suite, invoke)
        for args in (
            ("deliveries", webhook_id),
            ("redeliver", webhook_id, str(delivery_id)),
            ("delete", webhook_id),
        ):
            result = await invoke("webhooks", *args)
            assert result.exit_code == 1 and result.stderr.startswith("Error: Forbidden (403)"), (
                args,
                result.output,
            )
