"""socialctl login --app: the authorization-code flow with PKCE and a loopback listener, driven
by a browser that follows identity's real pages.

The first tests run the command with Typer's runner against the in-process suite (SQLite and
PostgreSQL): ``codeflow.open_in_browser`` hands the address to the test's browser, which signs
in on the pages and then visits the loopback listener over a real socket. The ``e2e`` tests at
the end start the real processes, run the installed script (and examples/code-flow/signin.sh)
as subprocesses and read the address from their output, as a person at a terminal would."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from socialctl import codeflow
from tests.cli.browser import Browser
from tests.cli.conftest import Invoke, Outcome
from tests.e2e.people import Person, bearer, grant
from tests.helpers import PASSWORD, admin, auth, register, unique, with_personal
from tests.processes import ROOT, Running, launched

LOOPBACK = "http://127.0.0.1/callback"
SOCIALCTL = str(Path(sys.executable).with_name("socialctl"))
SCRIPT = ROOT / "examples" / "code-flow" / "signin.sh"


async def new_app(suite, *, scopes: tuple[str, ...] = ("read", "write"), uris=(LOOPBACK,)) -> str:
    token, _ = await admin(suite, unique("appadmin"))
    resp = await suite.client.post(
        "/api/v1/admin/apps",
        json={"name": "socialctl", "kind": "public", "redirect_uris": list(uris), "scopes": list(scopes)},
        headers=auth(token),
    )
    assert resp.status_code == 201, resp.text
    app_id: str = resp.json()["id"]
    return app_id


class Landing:
    """What the test's browser saw: the authorization URL, and the listener's page."""

    url: str = ""
    response: httpx.Response | None = None


@pytest.fixture
async def opened(monkeypatch: pytest.MonkeyPatch) -> asyncio.Queue[str]:
    """The addresses the command asks the browser to open, handed to the test's loop."""
    loop = asyncio.get_running_loop()
    urls: asyncio.Queue[str] = asyncio.Queue()
    monkeypatch.setattr(
        codeflow, "open_in_browser", lambda url: loop.call_soon_threadsafe(urls.put_nowait, url)
    )
    return urls


async def code_login(
    suite, invoke: Invoke, opened: asyncio.Queue[str], app_id: str, email: str, *args: str, **choice: str
) -> tuple[Outcome, Landing]:
    """Runs ``login --app`` while the test's browser signs in as ``email``."""
    landing = Landing()
    command = asyncio.ensure_future(invoke("login", "--app", app_id, *args))
    url = asyncio.ensure_future(opened.get())
    done, _ = await asyncio.wait({command, url}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if url not in done:
        url.cancel()
        return await command, landing
    landing.url = url.result()
    async with httpx.AsyncClient(transport=suite.router, timeout=30) as pages:
        location = await Browser(pages).sign_in(landing.url, email=email, password=PASSWORD, **choice)
    async with httpx.AsyncClient(timeout=30) as network:
        landing.response = await network.get(location)
    return await asyncio.wait_for(command, 60), landing


def saved(config_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(config_path.read_text())
    return data


async def test_login_through_an_app_keeps_the_persona_chosen_in_the_browser(
    suite, invoke, opened, config_path
):
    app_id = await new_app(suite)
    email = await register(suite.client, unique("ada"))
    await suite.deliver()
    result, landing = await code_login(suite, invoke, opened, app_id, email)
    assert result.exit_code == 0, result.output
    query = parse_qs(urlsplit(landing.url).query)
    assert query["client_id"] == [app_id] and query["code_challenge_method"] == ["S256"]
    redirect = urlsplit(query["redirect_uri"][0])
    assert (redirect.hostname, redirect.path) == ("127.0.0.1", "/callback") and redirect.port
    assert len(query["state"][0]) >= 32 and len(query["code_challenge"][0]) == 43
    assert landing.response is not None and landing.response.status_code == 200
    assert "close this tab" in landing.response.text
    config = saved(config_path)
    assert config["app_id"] == app_id and config["persona"] == "professional"
    assert config["scope"] == "read write" and config["refresh_token"] and config["username"] == email
    assert config["client_id"] is None and config["client_secret"] is None
    assert f"as {email}, professional persona {config['persona_id']} through app {app_id}" in result.stdout
    for secret in (config["access_token"], config["refresh_token"], PASSWORD):
        assert secret not in result.output
    posted = await invoke("post", "Signed in through an app", "--json")
    assert posted.exit_code == 0, posted.output
    assert json.loads(posted.stdout)["author"]["id"] == config["persona_id"]


async def test_the_personal_persona_stays_the_grants_through_a_refresh(
    suite, invoke, opened, config_path, bridge
):
    app_id = await new_app(suite)
    ids = await with_personal(suite.client, unique("bea"))
    await suite.deliver()
    result, _ = await code_login(suite, invoke, opened, app_id, ids["email"], persona="personal")
    assert result.exit_code == 0, result.output
    config = saved(config_path)
    assert config["persona"] == "personal" and config["persona_id"] == ids["personal_id"]
    # the personal persona's /me names the persona alone: nothing of the account is kept or shown
    assert config["username"].startswith("@") and ids["email"] not in config_path.read_text()
    assert ids["email"] not in result.output
    config["access_token"] = "not-a-token"  # the API's 401 makes the command renew
    config_path.write_text(json.dumps(config))
    posted = await invoke("post", "From home", "--json")
    assert posted.exit_code == 0, posted.output
    assert json.loads(posted.stdout)["author"]["id"] == ids["personal_id"]
    refresh = [
        parse_qs(r.content.decode())
        for r in bridge.requests
        if r.url.path == "/api/v1/auth/token" and b"grant_type=refresh_token" in r.content
    ]
    assert len(refresh) == 1
    assert refresh[0]["client_id"] == [app_id] and "persona" not in refresh[0]
    renewed = saved(config_path)
    assert renewed["refresh_token"] != config["refresh_token"] and renewed["persona_id"] == ids["personal_id"]


async def test_saying_no_in_the_browser_saves_nothing(suite, invoke, opened, config_path):
    app_id = await new_app(suite)
    email = await register(suite.client, unique("cid"))
    result, landing = await code_login(suite, invoke, opened, app_id, email, decision="deny")
    assert result.exit_code == 1
    assert (
        result.stderr.splitlines()[-1]
        == "Error: Sign-in not completed: access_denied: The person did not allow it."
    )
    assert landing.response is not None and "Sign-in not completed" in landing.response.text
    assert not config_path.exists()


async def test_a_read_only_grant_cannot_post(suite, invoke, opened, config_path):
    app_id = await new_app(suite)
    email = await register(suite.client, unique("dee"))
    await suite.deliver()
    result, _ = await code_login(suite, invoke, opened, app_id, email, "--scope", "read")
    assert result.exit_code == 0, result.output
    assert saved(config_path)["scope"] == "read" and "(scope: read)" in result.stdout
    posted = await invoke("post", "Not allowed")
    assert posted.exit_code == 1 and posted.stderr.startswith("Error: Forbidden (403)")


async def test_nobody_coming_back_is_a_timeout(suite, invoke, config_path, monkeypatch):
    app_id = await new_app(suite)
    monkeypatch.setattr(codeflow, "open_in_browser", lambda url: None)
    result = await invoke("login", "--app", app_id, "--timeout", "1")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith(
        "Error: Sign-in timed out: No answer from the browser within 1 s"
    )
    assert "/oauth/authorize?" in result.stderr  # the address was shown
    assert not config_path.exists()


async def test_usage_mistakes_exit_2(invoke, bridge):
    both = await invoke("login", "--app", "app_x", "--user", "a@agency.example")
    assert both.exit_code == 2 and "Give one of --app" in both.stderr
    named = await invoke("login", "--app", "app_x", "--redirect-uri", "http://localhost/callback")
    assert (
        named.exit_code == 2 and "--redirect-uri: the redirect URI must be http://127.0.0.1/" in named.stderr
    )
    assert bridge.requests == []


async def test_logout_revokes_the_apps_refresh_token(suite, invoke, opened, config_path):
    app_id = await new_app(suite)
    email = await register(suite.client, unique("eve"))
    result, _ = await code_login(suite, invoke, opened, app_id, email)
    assert result.exit_code == 0, result.output
    refresh = saved(config_path)["refresh_token"]
    assert (await invoke("logout")).exit_code == 0
    resp = await suite.client.post(
        "/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": app_id},
    )
    assert resp.status_code == 400


async def test_a_revoked_app_ends_the_session(suite, invoke, opened, config_path):
    app_id = await new_app(suite)
    email = await register(suite.client, unique("fay"))
    await suite.deliver()
    result, _ = await code_login(suite, invoke, opened, app_id, email)
    assert result.exit_code == 0, result.output
    token, _ = await admin(suite, unique("revoker"))
    assert (await suite.client.delete(f"/api/v1/admin/apps/{app_id}", headers=auth(token))).status_code == 204
    config = saved(config_path)
    config.update(access_token="expired", expires_at=time.time() - 60)
    config_path.write_text(json.dumps(config))
    posted = await invoke("post", "Too late")
    assert posted.exit_code == 1
    assert posted.stderr.startswith("Error: Session expired (401)") and "socialctl login" in posted.stderr


# -- the real processes ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with launched(tmp_path_factory.mktemp("codeflow") / "var") as suite:
        yield suite


@pytest.fixture(scope="module")
def admin_token(running: Running) -> str:
    with httpx.Client(base_url=running.url(), timeout=30) as http:
        person = Person(http, running, "root")
        grant(running, person, "admin")
        person.refresh()
        token: str = person.tokens["professional"]
        return token


@contextlib.asynccontextmanager
async def started(*args: str, env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        *args,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def address_in(stream: asyncio.StreamReader, lines: list[str]) -> str:
    """The authorization URL, on a line of its own in what the process writes."""
    while True:
        line = (await asyncio.wait_for(stream.readline(), 60)).decode()
        assert line, "".join(lines)
        lines.append(line)
        if "/oauth/authorize?" in line:
            return line.strip()


@pytest.mark.e2e
async def test_the_installed_command_signs_in_through_the_gateway(running, admin_token, tmp_path):
    config = tmp_path / "config.json"
    env = {"SOCIALCTL_CONFIG": str(config), "SOCIALCTL_URL": running.url(), "COLUMNS": "200"}
    with httpx.Client(base_url=running.url(), timeout=30) as http:
        person = Person(http, running, "gus")
    created = subprocess.run(
        [
            SOCIALCTL,
            "apps",
            "create",
            "--name",
            "socialctl",
            "--public",
            "--redirect-uri",
            LOOPBACK,
            "--json",
        ],
        env={**os.environ, **env, "SOCIALCTL_CONFIG": str(tmp_path / "admin.json")},
        input="",
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert created.returncode == 1 and "Not signed in" in created.stderr  # nobody signed in yet
    admin_config = tmp_path / "admin.json"
    admin_config.write_text(json.dumps({"url": running.url(), "access_token": admin_token}))
    created = subprocess.run(
        [
            SOCIALCTL,
            "apps",
            "create",
            "--name",
            "socialctl",
            "--public",
            "--redirect-uri",
            LOOPBACK,
            "--json",
        ],
        env={**os.environ, **env, "SOCIALCTL_CONFIG": str(admin_config)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    app_id = json.loads(created.stdout)["id"]

    lines: list[str] = []
    async with started(
        SOCIALCTL, "login", "--app", app_id, "--no-browser", "--timeout", "120", env=env
    ) as cli:
        assert cli.stderr is not None and cli.stdout is not None
        url = await address_in(cli.stderr, lines)
        assert url.startswith(running.url() + "/oauth/authorize?")  # discovery names the gateway
        async with httpx.AsyncClient(timeout=30) as pages:
            location = await Browser(pages).sign_in(
                url, email=person.email, password=PASSWORD, persona="personal"
            )
            landing = await pages.get(location)
        assert landing.status_code == 200 and "close this tab" in landing.text
        out = (await asyncio.wait_for(cli.stdout.read(), 60)).decode()
        rest = (await cli.stderr.read()).decode()
        assert await cli.wait() == 0, "".join(lines) + rest
    assert f"through app {app_id}" in out and "personal persona" in out
    saved_config = saved(config)
    assert saved_config["persona_id"] == person.ids["personal"]
    with httpx.Client(base_url=running.url(), timeout=30) as http:
        me = http.get("/api/v1/me", headers=bearer(saved_config["access_token"]))
        assert me.status_code == 200 and me.json()["context"] == "personal"
    whoami = subprocess.run([SOCIALCTL, "whoami"], env={**os.environ, **env}, capture_output=True, text=True)
    assert whoami.returncode == 0 and f"through app {app_id}" in whoami.stdout


@pytest.mark.e2e
@pytest.mark.parametrize("shell", ["sh", "bash"])
async def test_the_copy_paste_script_with_curl_and_openssl(running, admin_token, shell):
    with httpx.Client(base_url=running.url(), timeout=30) as http:
        person = Person(http, running, "hal")
        resp = http.post(
            "/api/v1/admin/apps",
            json={"name": "curl", "kind": "public", "redirect_uris": [LOOPBACK], "scopes": ["read"]},
            headers=bearer(admin_token),
        )
        assert resp.status_code == 201, resp.text
    app_id = resp.json()["id"]
    env = {"GATEWAY": running.url(), "CLIENT_ID": app_id, "SCOPE": "read"}
    lines: list[str] = []
    async with started(shell, str(SCRIPT), env=env) as script:
        assert script.stdin is not None and script.stdout is not None and script.stderr is not None
        url = await address_in(script.stderr, lines)
        async with httpx.AsyncClient(timeout=30) as pages:
            pasted = await Browser(pages).sign_in(url, email=person.email, password=PASSWORD)
        assert pasted.startswith(LOOPBACK + "?code=")  # nothing listens there: the person copies it
        script.stdin.write(pasted.encode() + b"\n")
        await script.stdin.drain()
        out = (await asyncio.wait_for(script.stdout.read(), 60)).decode()
        rest = (await script.stderr.read()).decode()
        assert await script.wait() == 0, "".join(lines) + rest
    tokens = json.loads(out)
    assert tokens["scope"] == "read" and tokens["persona_id"] == person.ids["professional"]
    with httpx.Client(base_url=running.url(), timeout=30) as http:
        me = http.get("/api/v1/me", headers=bearer(tokens["access_token"]))
        assert me.status_code == 200 and me.json()["email"] == person.email
        again = http.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": app_id,
            },
        )
        assert again.status_code == 200 and again.json()["persona_id"] == person.ids["professional"]


@pytest.mark.e2e
async def test_the_script_refuses_an_answer_of_another_sign_in(running, admin_token):
    with httpx.Client(base_url=running.url(), timeout=30) as http:
        resp = http.post(
            "/api/v1/admin/apps",
            json={"name": "curl", "kind": "public", "redirect_uris": [LOOPBACK]},
            headers=bearer(admin_token),
        )
    env = {"GATEWAY": running.url(), "CLIENT_ID": resp.json()["id"]}
    for pasted, message in [
        (f"{LOOPBACK}?code=gsc_x&state=someone-elses", "another sign-in"),
        (f"{LOOPBACK}?error=access_denied&error_description=No+thanks&state=x", "access_denied: No thanks"),
        ("gsc_not-a-code", "refused the code"),
    ]:
        done = subprocess.run(
            ["sh", str(SCRIPT)], input=pasted + "\n", env={**os.environ, **env},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 1 and message in done.stderr, done.stderr
        assert "access_token" not in done.stdout
