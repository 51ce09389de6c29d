"""clients create | list | delete: an administrator registers the integrator clients (HR
systems, webhook receivers) that sign in with their own secret."""

from __future__ import annotations

import json
import stat

from rich.console import Console

from socialctl import api, cli
from tests.cli.conftest import admin_login, user_login
from tests.helpers import auth, login


async def test_create_shows_the_secret_once_and_it_signs_the_client_in(suite, invoke):
    await admin_login(suite, invoke)
    result = await invoke(
        "clients", "create", "--name", "HR sync", "--scope", "scim", "--scope", "webhooks", "--show-secret"
    )
    assert result.exit_code == 0, result.output
    registered, shown = result.stdout.splitlines()
    assert registered.startswith("Registered client cl_") and registered.endswith(
        "(HR sync), scope: scim webhooks"
    )
    client_id = registered.split()[2]
    assert shown.startswith("Its secret, shown this once and never again: ")
    secret = shown.rsplit(" ", 1)[1]
    signed_in = await invoke("login", "--client-id", client_id, env_extra={"SOCIALCTL_CLIENT_SECRET": secret})
    assert signed_in.exit_code == 0, signed_in.output
    assert f"client {client_id} (scope: scim webhooks)" in signed_in.stdout


async def test_the_secret_file_is_private_and_the_output_holds_no_secret(suite, invoke, tmp_path):
    await admin_login(suite, invoke)
    secret_file = tmp_path / "client.secret"
    result = await invoke(
        "clients",
        "create",
        "--name",
        "Receiver",
        "--scope",
        "webhooks",
        "--secret-file",
        str(secret_file),
        "--json",
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    secret = secret_file.read_text().strip()
    assert len(secret) >= 32 and stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert secret not in result.output and "client_secret" not in created
    assert created["client_id"].startswith("cl_") and created["scopes"] == ["webhooks"]
    shown = await invoke(
        "clients",
        "create",
        "--name",
        "Twice",
        "--scope",
        "read",
        "--scope",
        "read",
        "--show-secret",
        "--json",
    )
    assert shown.exit_code == 0, shown.output
    both = json.loads(shown.stdout)
    assert both["client_secret"] and both["scopes"] == ["read"]


async def test_usage_mistakes_exit_2_before_any_request(suite, invoke, bridge):
    await admin_login(suite, invoke)
    sent = len(bridge.requests)
    no_secret = await invoke("clients", "create", "--name", "X", "--scope", "scim")
    assert no_secret.exit_code == 2 and "--secret-file PATH or --show-secret" in no_secret.stderr
    for args in (("--name", "X", "--show-secret"), ("--name", "X", "--scope", "admin", "--show-secret")):
        assert (await invoke("clients", "create", *args)).exit_code == 2, args
    assert len(bridge.requests) == sent


async def test_the_apis_refusal_is_shown_with_its_field(suite, invoke):
    await admin_login(suite, invoke)
    result = await invoke("clients", "create", "--name", "   ", "--scope", "scim", "--show-secret")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Unprocessable Content (422)")
    assert "body.name" in result.stderr and "Traceback" not in result.output


async def test_list_follows_every_page_and_shows_whole_ids_in_a_narrow_terminal(
    suite, invoke, bridge, monkeypatch
):
    await admin_login(suite, invoke)
    ids = []
    for n in range(3):
        created = await invoke(
            "clients",
            "create",
            "--name",
            f"Client number {n} with a long name",
            "--scope",
            "scim",
            "--show-secret",
            "--json",
        )
        ids.append(json.loads(created.stdout)["client_id"])
    monkeypatch.setattr(api, "MAX_PAGE", 2)
    monkeypatch.setattr(cli, "out", Console(width=50, highlight=False, soft_wrap=True))
    sent = len(bridge.requests)
    result = await invoke("clients", "list")
    assert result.exit_code == 0, result.output
    for client_id in ids:
        row = next(line for line in result.stdout.splitlines() if client_id in line)
        assert row.rstrip(" │").endswith("yes")
    pages = [r for r in bridge.requests[sent:] if r.url.path == "/api/v1/admin/clients"]
    assert len(pages) >= 2 and all(r.url.params["limit"] == "2" for r in pages)
    listed = json.loads((await invoke("clients", "list", "--json")).stdout)
    assert {c["client_id"] for c in listed} >= set(ids) and all("client_secret" not in c for c in listed)


async def test_delete_revokes_the_client_and_its_tokens(suite, invoke):
    email = await admin_login(suite, invoke)
    created = json.loads(
        (
            await invoke(
                "clients", "create", "--name", "Leaver", "--scope", "scim", "--show-secret", "--json"
            )
        ).stdout
    )
    client_id, secret = created["client_id"], created["client_secret"]
    grant = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    token = (await suite.client.post("/api/v1/auth/token", data=grant)).json()["access_token"]
    result = await invoke("clients", "delete", client_id)
    assert result.exit_code == 0 and result.stdout.strip() == f"Revoked client {client_id}."
    scim = await suite.client.get("/scim/v2/Users", headers=auth(token))
    assert scim.status_code == 401
    assert (await suite.client.post("/api/v1/auth/token", data=grant)).status_code in (400, 401)
    row = next(line for line in (await invoke("clients", "list")).stdout.splitlines() if client_id in line)
    assert row.rstrip(" │").endswith("no")
    admin_token = (await login(suite.client, email))["access_token"]
    listed = await suite.client.get("/api/v1/admin/clients", params={"limit": 100}, headers=auth(admin_token))
    assert next(c for c in listed.json()["items"] if c["client_id"] == client_id)["revoked_at"]
    unknown = await invoke("clients", "delete", "cl_nosuchclient")
    assert unknown.exit_code == 1 and unknown.stderr.startswith("Error: Not Found (404)")


async def test_clients_are_for_administrators(suite, invoke, tmp_path):
    await user_login(suite, invoke)
    for args in (
        ("list",),
        ("create", "--name", "Mine", "--scope", "scim", "--secret-file", str(tmp_path / "s")),
        ("delete", "cl_nosuchclient"),
    ):
        result = await invoke("clients", *args)
        assert result.exit_code == 1 and result.stderr.startswith("Error: Forbidden (403)"), (
            args,
            result.output,
        )
    assert not (tmp_path / "s").exists()
