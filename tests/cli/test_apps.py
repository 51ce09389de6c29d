"""apps create | list | delete: an administrator registers the apps people sign in to."""

from __future__ import annotations

import json
import stat
from typing import Any

from rich.console import Console

from socialctl import cli
from tests.cli.conftest import admin_login, user_login
from tests.helpers import auth, login

LOOPBACK = "http://127.0.0.1/callback"


async def app_of(suite, email: str, app_id: str) -> dict[str, Any]:
    token = (await login(suite.client, email))["access_token"]
    resp = await suite.client.get(f"/api/v1/admin/apps/{app_id}", headers=auth(token))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_create_a_public_app_prints_its_id_and_no_secret(suite, invoke):
    email = await admin_login(suite, invoke)
    result = await invoke(
        "apps", "create", "--name", "socialctl at my desk", "--public",
        "--redirect-uri", LOOPBACK, "--scope", "read",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith("Registered public app app_") and first.endswith("scope: read")
    app_id = first.split()[3]
    assert f"redirect URI: {LOOPBACK}" in result.stdout
    assert "secret" not in result.stdout.lower()
    saved = await app_of(suite, email, app_id)
    assert saved["kind"] == "public" and saved["scopes"] == ["read"] and saved["redirect_uris"] == [LOOPBACK]


async def test_both_scopes_when_none_is_named_and_json_for_scripts(suite, invoke):
    await admin_login(suite, invoke)
    result = await invoke(
        "apps", "create", "--name", "Widget", "--public", "--redirect-uri", "https://intranet.agency.example/w/",
        "--redirect-uri", LOOPBACK, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["id"].startswith("app_") and sorted(created["scopes"]) == ["read", "write"]
    assert created["redirect_uris"] == ["https://intranet.agency.example/w/", LOOPBACK]
    assert "client_secret" not in created


async def test_a_confidential_apps_secret_goes_to_a_private_file_once(suite, invoke, tmp_path):
    await admin_login(suite, invoke)
    secret_file = tmp_path / "app.secret"
    result = await invoke(
        "apps", "create", "--name", "Portal", "--confidential",
        "--redirect-uri", "https://portal.agency.example/cb", "--secret-file", str(secret_file),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    secret = secret_file.read_text().strip()
    assert len(secret) >= 20 and stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert secret not in result.output and "written to" in result.stdout
    shown = await invoke(
        "apps", "create", "--name", "Portal 2", "--confidential",
        "--redirect-uri", "https://portal.agency.example/cb", "--show-secret", "--json",
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["client_secret"]


async def test_usage_mistakes_exit_2_before_any_request(suite, invoke, bridge):
    await admin_login(suite, invoke)
    sent = len(bridge.requests)
    cases = [
        (("--redirect-uri", LOOPBACK), "either --public or --confidential"),
        (("--public", "--confidential", "--redirect-uri", LOOPBACK), "either --public or --confidential"),
        (("--public", "--redirect-uri", LOOPBACK, "--show-secret"), "A public app has no secret"),
        (
            ("--confidential", "--redirect-uri", "https://a.agency.example/cb"),
            "--secret-file PATH or --show-secret",
        ),
    ]
    for args, message in cases:
        result = await invoke("apps", "create", "--name", "X", *args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.output)
    bad_scope = await invoke(
        "apps", "create", "--name", "X", "--public", "--redirect-uri", LOOPBACK, "--scope", "scim"
    )
    assert bad_scope.exit_code == 2
    assert len(bridge.requests) == sent


async def test_the_apis_refusal_of_a_redirect_uri_is_shown_with_its_field(suite, invoke):
    await admin_login(suite, invoke)
    result = await invoke(
        "apps", "create", "--name", "Bad", "--public", "--redirect-uri", "http://intranet.example/cb"
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Unprocessable Content (422)")
    assert "body.redirect_uris" in result.stderr and "Traceback" not in result.output


async def test_list_shows_whole_ids_in_a_narrow_terminal(suite, invoke, monkeypatch):
    await admin_login(suite, invoke)
    ids = []
    for n in range(3):
        name = f"App number {n} with a rather long name to squeeze the table"
        created = await invoke(
            "apps", "create", "--name", name, "--public", "--redirect-uri", LOOPBACK, "--json"
        )
        ids.append(json.loads(created.stdout)["id"])
    monkeypatch.setattr(cli, "out", Console(width=60, highlight=False, soft_wrap=True))
    result = await invoke("apps", "list")
    assert result.exit_code == 0, result.output
    for app_id in ids:
        assert app_id in result.stdout
    listed = json.loads((await invoke("apps", "list", "--json")).stdout)
    assert {a["id"] for a in listed} >= set(ids)


async def test_delete_revokes_and_list_says_so(suite, invoke):
    email = await admin_login(suite, invoke)
    created = await invoke(
        "apps", "create", "--name", "Short-lived", "--public", "--redirect-uri", LOOPBACK, "--json"
    )
    app_id = json.loads(created.stdout)["id"]
    result = await invoke("apps", "delete", app_id)
    assert result.exit_code == 0 and result.stdout.strip() == f"Revoked app {app_id}."
    assert (await app_of(suite, email, app_id))["revoked_at"] is not None
    row = next(line for line in (await invoke("apps", "list")).stdout.splitlines() if app_id in line)
    assert row.rstrip(" │").endswith("no")
    unknown = await invoke("apps", "delete", "app_nosuchapp")
    assert unknown.exit_code == 1 and unknown.stderr.startswith("Error: Not Found (404)")


async def test_apps_are_for_administrators(suite, invoke):
    await user_login(suite, invoke)
    result = await invoke("apps", "list")
    assert result.exit_code == 1 and result.stderr.startswith("Error: Forbidden (403)")
