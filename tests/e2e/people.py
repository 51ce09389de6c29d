"""People of the end-to-end tests: registered through the gateway with both personas, signed
in as each, and granted roles the operator's way."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx

from launcher.topology import Layout, environment
from tests.helpers import unique
from tests.mailbox import confirm
from tests.processes import ROOT, Running, eventually

PASSWORD = "correct horse battery staple"
Headers = dict[str, str]


def bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


def sign_in(client: httpx.Client, email: str, persona: str) -> dict[str, Any]:
    resp = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": PASSWORD, "persona": persona},
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


class Person:
    """Someone registered through the gateway, with both personas."""

    def __init__(self, client: httpx.Client, running: Running, name: str) -> None:
        handle = unique(name)
        self.email = f"{handle}@agency.example"
        resp = client.post(
            "/api/v1/accounts",
            json={"email": self.email, "password": PASSWORD, "handle": handle, "display_name": name},
        )
        assert resp.status_code == 202, resp.text
        confirm(client, running.token_for(handle), PASSWORD)
        pro = sign_in(client, self.email, "professional")
        resp = client.post(
            "/api/v1/me/personas",
            json={"handle": f"{handle}_h", "display_name": f"{name} at home"},
            headers=bearer(pro["access_token"]),
        )
        assert resp.status_code == 201, resp.text
        self.client = client
        self.tokens = {"professional": pro["access_token"]}
        self.ids = {"professional": pro["persona_id"]}
        personal = sign_in(client, self.email, "personal")
        self.tokens["personal"] = personal["access_token"]
        self.ids["personal"] = personal["persona_id"]

    def headers(self, context: str) -> Headers:
        return bearer(self.tokens[context])

    def refresh(self) -> None:
        """New tokens, which carry the roles granted since."""
        for context in ("professional", "personal"):
            self.tokens[context] = sign_in(self.client, self.email, context)["access_token"]


def grant(running: Running, person: Person, role: str) -> None:
    """The operator's way (services.identity.manage), with identity's database and subscribers
    as the launcher set them, so that moderation learns of the role."""
    launched = environment(
        Layout("127.0.0.1", running.ports), internal_token="unused", var_dir=str(running.var)
    )
    env = {
        **os.environ,
        "IDENTITY_DATABASE_URL": launched["IDENTITY_DATABASE_URL"],
        "IDENTITY_SUBSCRIBERS": launched["IDENTITY_SUBSCRIBERS"],
    }
    command = [sys.executable, "-m", "services.identity.manage", "grant-role", person.email, role]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    person.refresh()


def until(check: Callable[[], bool], what: str | Callable[[], str]) -> None:
    """Waits up to a minute for ``check``; ``what`` says what failed, or is called to say it
    (only then: a message that reads the suite costs its requests)."""
    assert eventually(lambda: check() or None, timeout=60), what() if callable(what) else what


def ids(client: httpx.Client, path: str, headers: Headers, **params: str) -> set[str]:
    resp = client.get(path, headers=headers, params=params)
    assert resp.status_code == 200, (path, resp.text)
    return {item["id"] for item in resp.json()["items"]}
