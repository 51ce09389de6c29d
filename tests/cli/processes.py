"""socialctl against the real processes: the suite started as `make run` starts it, an
administrator made by the operator command, an integrator client, and the installed
``socialctl`` script run as a subprocess. Used by the end-to-end test and the import timing
(``python -m tests.cli.import_timing``)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.mailbox import confirm
from tests.processes import ROOT, Running, launched

PASSWORD = "correct horse battery staple"
SOCIALCTL = str(Path(sys.executable).with_name("socialctl"))


@contextlib.contextmanager
def suite_processes(var: Path, env: dict[str, str] | None = None) -> Iterator[Running]:
    """The suite on free ports, its processes given ``env`` on top of this one's."""
    with launched(var, env=env) as running:
        yield running


def integrator_client(running: Running, scopes: list[str]) -> dict[str, str]:
    """Registers an administrator (granted by the operator command) who registers a client."""
    email = "operator@agency.example"
    with httpx.Client(base_url=running.url(), timeout=30) as http:
        resp = http.post(
            "/api/v1/accounts",
            json={"email": email, "password": PASSWORD, "handle": "operator", "display_name": "Operator"},
        )
        assert resp.status_code == 202, resp.text
        confirm(http, running.token_for("operator"), PASSWORD)
        env = {
            **os.environ,
            "IDENTITY_DATABASE_URL": f"sqlite+aiosqlite:///{running.var / 'identity.db'}",
        }
        subprocess.run(
            [sys.executable, "-m", "services.identity.manage", "grant-role", email, "admin"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        tokens = http.post(
            "/api/v1/auth/token", data={"grant_type": "password", "username": email, "password": PASSWORD}
        ).json()
        resp = http.post(
            "/api/v1/admin/clients",
            json={"name": "HR sync", "scopes": scopes},
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        assert resp.status_code == 201, resp.text
        client: dict[str, str] = resp.json()
        return client


def socialctl(
    config: Path, url: str, *args: str, secret: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOCIALCTL_CONFIG": str(config), "SOCIALCTL_URL": url, "COLUMNS": "200"}
    if secret is not None:
        env["SOCIALCTL_CLIENT_SECRET"] = secret
    return subprocess.run(
        [SOCIALCTL, *args], env=env, capture_output=True, text=True, timeout=3600, check=False
    )


def write_people(path: Path, rows: int, *, bad_every: int = 0) -> None:
    """A CSV of ``rows`` people; with ``bad_every``, every n-th row has a broken email."""
    with path.open("w") as out:
        out.write("user_name,email,given_name,family_name,title,department,external_id,active\n")
        for n in range(1, rows + 1):
            email = f"person{n}@agency" if bad_every and n % bad_every == 0 else f"person{n}@agency.example"
            out.write(f"person{n},{email},Given{n},Family{n},Officer,Dept {n % 40},hr-{n},true\n")


def scim_total(running: Running, config_token: str) -> int:
    """The number of accounts SCIM lists. A test that has just used up its rate limit is told
    to wait: it waits as the API asks (Retry-After), as the command line does."""
    with httpx.Client(base_url=running.url(), timeout=600) as http:
        for _ in range(10):
            resp = http.get(
                "/scim/v2/Users",
                params={"count": 1, "attributes": "userName"},
                headers={"Authorization": f"Bearer {config_token}"},
            )
            if resp.status_code != 429:
                break
            time.sleep(float(resp.headers["retry-after"]))
        assert resp.status_code == 200, resp.text
        total: int = resp.json()["totalResults"]
        return total
