"""groups create, post, webhooks add|list|test, export, and how API errors are shown."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import stat
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from rich.console import Console
from typer.testing import CliRunner

from services.records import exports
from socialctl import api, cli, config
from socialctl.api import Api
from socialctl.cli import app
from socialctl.config import Config
from tests.cli.conftest import client_login, client_token
from tests.helpers import PASSWORD, auth, create_group, login, person, register, with_personal

HOOK = "https://hooks.agency.example/govsocial"
CHARTER = (
    "--objective",
    "Move every service.",
    "--audience",
    "The agency's engineers.",
    "--review-at",
    "2027-06-30",
)


async def user_login(suite, invoke, handle: str) -> str:
    email = await register(suite.client, handle)
    await suite.deliver()
    result = await invoke("login", "--user", email, "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    return email


async def test_groups_create_makes_the_signed_in_persona_its_owner(suite, invoke):
    email = await user_login(suite, invoke, "ada")
    result = await invoke(
        "groups", "create", "cloud_move", "--name", "Cloud move",
        "--purpose", "Move the agency services to the cloud together.", "--tag", "cloud", *CHARTER,
        "--indicator", "Every service moved", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    group = json.loads(result.stdout)
    assert group["handle"] == "cloud_move" and group["my_role"] == "owner" and group["tags"] == ["cloud"]
    assert (
        group["charter"]["objective"] == "Move every service."
        and group["charter"]["review_at"] == "2027-06-30"
    )
    assert group["charter"]["success_indicators"] == ["Every service moved"]
    token = (await login(suite.client, email))["access_token"]
    resp = await suite.client.get(f"/api/v1/groups/{group['id']}", headers=auth(token))
    assert resp.json()["name"] == "Cloud move"


async def test_a_groups_review_date_is_a_date_or_days_from_today(suite, invoke, bridge):
    await user_login(suite, invoke, "ada")
    purpose = "A purpose long enough to pass."
    charter = ("--objective", "Meet.", "--audience", "Everyone.")
    days = {(datetime.now(UTC).date() + timedelta(days=90)).isoformat()}
    result = await invoke(
        "groups",
        "create",
        "soon",
        "--name",
        "S",
        "--purpose",
        purpose,
        *charter,
        "--review-at",
        "90d",
        "--json",
    )
    assert result.exit_code == 0, result.output
    days.add((datetime.now(UTC).date() + timedelta(days=90)).isoformat())  # midnight may pass
    assert json.loads(result.stdout)["charter"]["review_at"] in days
    sent = len(bridge.requests)
    for review in ("soon", "2027-02-30", "90", "99999999d"):
        args = (
            "groups",
            "create",
            "bad",
            "--name",
            "B",
            "--purpose",
            purpose,
            *charter,
            "--review-at",
            review,
        )
        assert (await invoke(*args)).exit_code == 2, review
    assert (await invoke("groups", "create", "bad", "--name", "B", "--purpose", purpose)).exit_code == 2
    assert len(bridge.requests) == sent


async def test_api_problems_show_title_detail_and_fields_then_exit_1(suite, invoke):
    await user_login(suite, invoke, "ada")
    purpose = "A purpose long enough to pass."
    assert (
        await invoke("groups", "create", "dup", "--name", "D", "--purpose", purpose, *CHARTER)
    ).exit_code == 0
    again = await invoke("groups", "create", "dup", "--name", "D", "--purpose", purpose, *CHARTER)
    assert again.exit_code == 1
    assert again.stderr.strip() == "Error: Conflict (409): A group with this handle exists in this context."
    short = await invoke("groups", "create", "short", "--name", "S", "--purpose", "too short", *CHARTER)
    assert short.exit_code == 1
    assert short.stderr.startswith("Error: Unprocessable Content (422)")
    assert "body.purpose:" in short.stderr
    assert "Traceback" not in short.output and short.stdout == ""


async def test_an_unreachable_api_is_a_clean_error(suite, invoke):
    await user_login(suite, invoke, "ada")
    suite.router.down.add("gateway")
    result = await invoke("whoami")
    assert result.exit_code == 0
    result = await invoke("export", "--output", "ada.zip")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Cannot reach the API: http://gateway")


async def test_post_publishes_as_the_signed_in_persona(suite, invoke):
    await user_login(suite, invoke, "ada")
    await suite.deliver()  # the feed learns the persona from identity's events
    result = await invoke("post", "Kick-off on Monday", "--json")
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["body"] == "Kick-off on Monday" and created["audience"] == "organisation"
    assert created["author"]["handle"] == "ada"


async def test_creates_carry_a_fresh_idempotency_key_so_a_lost_answer_can_be_asked_again(
    suite, invoke, bridge
):
    await user_login(suite, invoke, "ada")
    await suite.deliver()
    purpose = "A purpose long enough to pass."
    for args in (
        ("post", "One"),
        ("post", "Two"),
        ("groups", "create", "keyed", "--name", "K", "--purpose", purpose, *CHARTER),
    ):
        assert (await invoke(*args)).exit_code == 0
    creates = [
        r for r in bridge.requests if r.method == "POST" and r.url.path in ("/api/v1/posts", "/api/v1/groups")
    ]
    keys = [r.headers["idempotency-key"] for r in creates]
    assert len(keys) == 3 == len(set(keys))
    replay = await suite.client.send(creates[0])  # the same request again: the first answer, no second post
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"


def test_an_announcement_is_an_organisation_post_with_pinned_until(monkeypatch, tmp_path):
    """The feed's announcements are being built: this pins down what the command sends."""
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(201, json={"id": "p1", "audience": "organisation", **sent[-1]})

    monkeypatch.setattr(
        "socialctl.api.client_factory",
        lambda url: httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=url),
    )
    path = tmp_path / "config.json"
    config.save(Config(url="http://api", access_token="t"), path)
    env = {"SOCIALCTL_CONFIG": str(path)}
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["post", "Offices closed Friday", "--announcement", "--pinned-until", "2026-12-24T18:00"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert sent[-1] == {
        "body": "Offices closed Friday",
        "audience": "organisation",
        "pinned_until": "2026-12-24T18:00:00+00:00",
    }
    result = runner.invoke(app, ["post", "Soon", "--announcement"], env=env)
    assert result.exit_code == 0 and sent[-1]["pinned_until"] > "2026"
    result = runner.invoke(app, ["post", "x", "--announcement", "--group", "g"], env=env)
    assert result.exit_code == 2
    result = runner.invoke(app, ["post", "x", "--announcement", "--pinned-until", "99999999d"], env=env)
    assert result.exit_code == 2 and "duration such as 7d" in result.output


async def test_webhooks_add_list_and_test(suite, invoke, tmp_path):
    await client_login(suite, invoke, ("webhooks",))
    refused = await invoke("webhooks", "add", HOOK, "--event", "post.created")
    assert refused.exit_code == 2 and "--secret-file" in refused.stderr
    secret_file = tmp_path / "hook.secret"
    added = await invoke(
        "webhooks", "add", HOOK, "--event", "post.created", "--event", "group.*",
        "--secret-file", str(secret_file), "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    endpoint = json.loads(added.stdout)
    secret = secret_file.read_text().strip()
    assert secret.startswith("whsec_") and secret not in added.output and "secret" not in endpoint
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600

    internal = await invoke("webhooks", "add", "https://127.0.0.1/hook", "--event", "*", "--show-secret")
    assert internal.exit_code == 1
    assert "Error: Unprocessable Content (422): The URL must not name an internal address." in internal.stderr
    assert "body.url: must not name an internal address" in internal.stderr

    listed = await invoke("webhooks", "list")
    assert listed.exit_code == 0, listed.output
    assert (
        endpoint["id"] in listed.stdout and HOOK in listed.stdout and "group.*, post.created" in listed.stdout
    )

    tested = await invoke("webhooks", "test", endpoint["id"], "--wait", "0.2")
    assert tested.exit_code == 0, tested.output
    assert "Queued webhook.test event" in tested.stdout and ": pending" in tested.stdout
    token = await client_token(suite, ("webhooks",))
    # another client's endpoints are not listed, and its id is a 404 for this one
    other = await suite.client.get(f"/api/v1/webhooks/{endpoint['id']}", headers=auth(token))
    assert other.status_code == 404
    missing = await invoke("webhooks", "test", "00000000-0000-0000-0000-000000000000")
    assert missing.exit_code == 1 and "Not Found (404)" in missing.stderr


async def test_webhooks_list_follows_every_page_and_shows_whole_ids(suite, invoke, bridge, monkeypatch):
    await client_login(suite, invoke, ("webhooks",))
    for n in range(3):
        assert (
            await invoke("webhooks", "add", f"{HOOK}/{n}", "--event", "*", "--show-secret")
        ).exit_code == 0
    monkeypatch.setattr(api, "MAX_PAGE", 2)
    sent = len(bridge.requests)
    listed = await invoke("webhooks", "list", "--json")
    endpoints = json.loads(listed.stdout)
    assert [e["url"] for e in endpoints] == [f"{HOOK}/{n}" for n in range(3)]
    assert len(bridge.requests) - sent == 2
    monkeypatch.setattr(cli, "out", Console(width=50, highlight=False, soft_wrap=True))
    table = await invoke("webhooks", "list")
    assert table.exit_code == 0, table.output
    assert all(e["id"] in table.stdout for e in endpoints)


async def test_pages_follow_next_cursor_to_the_end(suite, monkeypatch):
    token, _ = await person(suite.client, "ada")
    await suite.deliver()
    for n in range(5):
        await create_group(suite.client, token, f"group_{n}")
    monkeypatch.setattr(
        "socialctl.api.client_factory", lambda url: httpx.AsyncClient(transport=suite.router, base_url=url)
    )
    seen: list[str | None] = []
    async with Api(Config(url="http://gateway", access_token=token)) as api:
        original = api.call

        async def spy(method, path, **kwargs):
            seen.append(kwargs.get("params", {}).get("cursor"))
            return await original(method, path, **kwargs)

        api.call = spy  # type: ignore[method-assign]
        handles = [g["handle"] async for g in api.pages("/api/v1/groups", {"mine": "true"}, limit=2)]
    assert sorted(handles) == [f"group_{n}" for n in range(5)]
    assert len(seen) == 3 and seen[0] is None and all(seen[1:])


@contextlib.asynccontextmanager
async def export_worker(suite) -> AsyncIterator[None]:
    """Records' export worker, running beside the command as it does in the service."""
    state = suite.records.state
    worker = exports.Exporter(state.database, state.settings, state.http_client, interval=0.05)
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        worker.stopping.set()
        await task


def package_text(path) -> str:
    with zipfile.ZipFile(path) as package:
        assert package.testzip() is None
        return "".join(package.read(name).decode() for name in package.namelist())


async def test_export_downloads_the_persona_own_package(suite, invoke, tmp_path):
    email = await user_login(suite, invoke, "ada")
    ada = await login(suite.client, email)
    bob, _ = await person(suite.client, "bob")
    await suite.deliver()
    for token, text in ((ada["access_token"], "First"), (ada["access_token"], "Second"), (bob, "Bob's")):
        resp = await suite.client.post("/api/v1/posts", json={"body": text}, headers=auth(token))
        assert resp.status_code == 201, resp.text
    await suite.deliver()
    output = tmp_path / "ada.zip"
    async with export_worker(suite):
        result = await invoke("export", "--output", str(output), "--poll", "0.05")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(output.stat().st_mode) == 0o600 and not (tmp_path / "ada.zip.part").exists()
    with zipfile.ZipFile(output) as package:
        manifest = json.loads(package.read("manifest.json"))
        posts = [json.loads(line) for line in package.read("posts.jsonl").decode().splitlines()]
        for entry in manifest["entries"]:
            assert hashlib.sha256(package.read(entry["name"])).hexdigest() == entry["sha256"]
    assert sorted(p["body"] for p in posts) == ["First", "Second"]  # not Bob's
    assert {p["author_id"] for p in posts} == {ada["persona_id"]}
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    size = output.stat().st_size
    assert f"Exported {ada['persona_id']} to {output}: {size} bytes, SHA-256 {digest}." in result.stderr


async def test_a_personal_export_holds_nothing_of_the_account_or_the_professional_persona(
    suite, invoke, tmp_path
):
    ada = await with_personal(suite.client, "ada")
    account_id = (await suite.client.get("/api/v1/me", headers=auth(ada["pro"]))).json()["account_id"]
    await suite.deliver()
    for token, text in ((ada["personal"], "Weekend hike"), (ada["pro"], "Quarterly report")):
        resp = await suite.client.post("/api/v1/posts", json={"body": text}, headers=auth(token))
        assert resp.status_code == 201, resp.text
    await suite.deliver()
    login_result = await invoke(
        "login", "--user", ada["email"], "--password", PASSWORD, "--persona", "personal"
    )
    assert login_result.exit_code == 0, login_result.output
    output = tmp_path / "ada-personal.zip"
    async with export_worker(suite):
        result = await invoke("export", "-o", str(output), "--poll", "0.05")
    assert result.exit_code == 0, result.output
    text = package_text(output)
    assert "Weekend hike" in text and "Quarterly report" not in text
    for secret in (ada["email"], account_id, ada["pro_id"]):
        assert secret not in text and secret.encode() not in output.read_bytes()
        assert secret not in result.output


async def test_an_export_not_ready_in_time_is_a_clean_error(suite, invoke, tmp_path):
    await user_login(suite, invoke, "ada")
    output = tmp_path / "ada.zip"
    result = await invoke("export", "-o", str(output), "--timeout", "0")  # no worker runs
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Export not ready: The export ") and "0% done" in result.stderr
    assert not output.exists()
    again = await invoke("export", "-o", str(output))
    assert again.exit_code == 1 and "(409)" in again.stderr  # one of the persona's exports at a time
    assert (await invoke("export")).exit_code == 2  # --output is required
