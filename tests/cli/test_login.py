"""Signing in: an integrator client or a person, a private configuration file, no secret shown."""

from __future__ import annotations

import json
import stat
import time

from tests.cli.conftest import client_login, new_client
from tests.helpers import PASSWORD, register, with_personal


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_client_login_keeps_a_private_token_and_prints_no_secret(suite, invoke, config_path):
    client = await new_client(suite, ("scim",))
    result = await invoke("login", "--client-id", client["client_id"], input=client["client_secret"] + "\n")
    assert result.exit_code == 0, result.output
    assert f"client {client['client_id']}" in result.stdout
    saved = json.loads(config_path.read_text())
    assert saved["access_token"] and saved["scope"] == "scim"
    assert mode(config_path) == 0o600
    assert mode(config_path.parent) == 0o700
    for secret in (client["client_secret"], saved["access_token"]):
        assert secret not in result.output
    whoami = await invoke("whoami")
    assert whoami.exit_code == 0 and client["client_id"] in whoami.stdout
    assert saved["access_token"] not in whoami.output


async def test_user_login_uses_the_password_grant_and_keeps_no_password(suite, invoke, config_path):
    email = await register(suite.client, "ada")
    result = await invoke("login", "--user", email, input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    saved = json.loads(config_path.read_text())
    assert saved["username"] == email and saved["persona"] == "professional"
    assert saved["refresh_token"] and saved["persona_id"]
    assert PASSWORD not in config_path.read_text()
    assert PASSWORD not in result.output and saved["refresh_token"] not in result.output
    assert mode(config_path) == 0o600


async def test_user_login_as_the_personal_persona(suite, invoke, config_path):
    ids = await with_personal(suite.client, "bea")
    result = await invoke("login", "--user", ids["email"], "--persona", "personal", "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    assert json.loads(config_path.read_text())["persona_id"] == ids["personal_id"]


async def test_a_wrong_secret_is_a_clean_error_and_saves_nothing(suite, invoke, config_path):
    client = await new_client(suite, ("scim",))
    result = await invoke("login", "--client-id", client["client_id"], "--client-secret", "not-it")
    assert result.exit_code == 1
    assert "Error: Unauthorized (401): Client authentication failed." in result.stderr
    assert "Traceback" not in result.output
    assert not config_path.exists()


async def test_login_needs_exactly_one_kind_of_identity(invoke):
    result = await invoke("login")
    assert result.exit_code == 2
    assert "Give one of --app (a person, in the browser), --client-id or --user." in result.stderr


async def test_commands_say_when_nobody_is_signed_in(invoke):
    result = await invoke("webhooks", "list")
    assert result.exit_code == 1
    assert "Not signed in" in result.stderr and "socialctl login" in result.stderr


async def test_an_expired_client_token_is_renewed_with_the_saved_secret(suite, invoke, config_path):
    await client_login(suite, invoke, ("webhooks",))
    saved = json.loads(config_path.read_text())
    saved.update(access_token="expired", expires_at=time.time() - 60)
    config_path.write_text(json.dumps(saved))
    result = await invoke("webhooks", "list")
    assert result.exit_code == 0, result.output
    renewed = json.loads(config_path.read_text())
    assert renewed["access_token"] != "expired" and renewed["expires_at"] > time.time()
    assert mode(config_path) == 0o600


async def test_a_refused_user_token_is_renewed_with_the_refresh_token(suite, invoke, config_path):
    email = await register(suite.client, "cid")
    await suite.deliver()
    assert (await invoke("login", "--user", email, "--password", PASSWORD)).exit_code == 0
    saved = json.loads(config_path.read_text())
    saved["access_token"] = "not-a-token"  # not expired by the clock: the API's 401 triggers renewal
    config_path.write_text(json.dumps(saved))
    result = await invoke("post", "Renewed", "--json")
    assert result.exit_code == 0, result.output
    renewed = json.loads(config_path.read_text())
    assert renewed["refresh_token"] != saved["refresh_token"]  # rotated
    assert json.loads(result.stdout)["author"]["id"] == saved["persona_id"]


async def test_logout_revokes_the_refresh_token_and_removes_the_file(suite, invoke, config_path):
    email = await register(suite.client, "dee")
    assert (await invoke("login", "--user", email, "--password", PASSWORD)).exit_code == 0
    refresh = json.loads(config_path.read_text())["refresh_token"]
    result = await invoke("logout")
    assert result.exit_code == 0 and "Signed out" in result.stdout
    assert not config_path.exists()
    resp = await suite.client.post(
        "/api/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh}
    )
    assert resp.status_code == 400
