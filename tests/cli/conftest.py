"""socialctl driven by Typer's CliRunner against the in-process suite.

A command runs its own event loop (``asyncio.run``), so it runs in a worker thread; its requests
cross back to the test's loop, where the suite's apps and databases live, through ``LoopBridge``.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from socialctl import api, cli
from tests.helpers import PASSWORD, admin, auth, make_role, register, unique
from tests.suite import Suite


@dataclass
class Outcome:
    """A command's exit code and output; the suite's own JSON logs, which share the captured
    stderr while a command runs, are left out."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _without_logs(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith('{"time": '))


_admins = itertools.count()
Invoke = Callable[..., Awaitable[Outcome]]


class LoopBridge(httpx.AsyncBaseTransport):
    """Carries each request from the command's loop to the suite's loop and the answer back."""

    def __init__(self, transport: httpx.AsyncBaseTransport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self.requests: list[httpx.Request] = []

    async def _forward(self, request: httpx.Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        response = await self.transport.handle_async_request(request)
        body = b"".join([chunk async for chunk in response.aiter_raw()])
        await response.aclose()
        return response.status_code, response.headers.raw, body

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = await request.aread()
        copy = httpx.Request(request.method, request.url, headers=request.headers, content=content)
        self.requests.append(copy)
        future = asyncio.run_coroutine_threadsafe(self._forward(copy), self.loop)
        status, headers, body = await asyncio.wrap_future(future)
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body), request=request)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "socialctl" / "config.json"


@pytest.fixture
async def bridge(suite: Suite, monkeypatch: pytest.MonkeyPatch) -> LoopBridge:
    bridge = LoopBridge(suite.router, asyncio.get_running_loop())
    monkeypatch.setattr(api, "client_factory", lambda url: httpx.AsyncClient(transport=bridge, base_url=url))
    return bridge


@pytest.fixture
def invoke(bridge: LoopBridge, config_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """``await invoke("groups", "create", …)``: the command's Result (stdout and stderr apart)."""
    monkeypatch.setattr(cli, "out", Console(width=200, highlight=False, soft_wrap=True))
    monkeypatch.setattr(cli, "err", Console(width=200, highlight=False, soft_wrap=True, stderr=True))
    runner = CliRunner()
    env = {"SOCIALCTL_CONFIG": str(config_path), "SOCIALCTL_URL": "http://gateway"}

    async def run(*args: str, input: str | None = None, env_extra: dict[str, str] | None = None) -> Outcome:
        call = functools.partial(
            runner.invoke, cli.app, list(args), input=input, env={**env, **(env_extra or {})}
        )
        result: Result = await anyio.to_thread.run_sync(call)
        return Outcome(result.exit_code, result.stdout, _without_logs(result.stderr))

    return run


async def new_client(suite: Suite, scopes: tuple[str, ...] = ("scim", "webhooks")) -> dict[str, str]:
    """An integrator client registered by an administrator: its id and secret."""
    root, _ = await admin(suite, f"clientadmin{next(_admins)}")
    resp = await suite.client.post(
        "/api/v1/admin/clients", json={"name": "HR sync", "scopes": list(scopes)}, headers=auth(root)
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, str] = resp.json()
    return body


async def client_token(suite: Suite, scopes: tuple[str, ...] = ("scim",)) -> str:
    """A token for a new integrator client, obtained directly (to check what a command did)."""
    client = await new_client(suite, scopes)
    resp = await suite.client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
    )
    assert resp.status_code == 200, resp.text
    token: str = resp.json()["access_token"]
    return token


async def client_login(suite: Suite, invoke: Invoke, scopes: tuple[str, ...] = ("scim", "webhooks")) -> None:
    client = await new_client(suite, scopes)
    result = await invoke(
        "login",
        "--client-id",
        client["client_id"],
        env_extra={"SOCIALCTL_CLIENT_SECRET": client["client_secret"]},
    )
    assert result.exit_code == 0, result.output


async def admin_login(suite: Suite, invoke: Invoke) -> str:
    """Signs socialctl in as a new administrator; returns the email."""
    email = await register(suite.client, unique("cliadmin"))
    await make_role(suite, email, "admin")
    result = await invoke("login", "--user", email, "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    return email


async def user_login(suite: Suite, invoke: Invoke) -> str:
    """Signs socialctl in as a new person without any role; returns the email."""
    email = await register(suite.client, unique("plain"))
    result = await invoke("login", "--user", email, "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    return email
