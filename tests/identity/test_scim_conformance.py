"""The community's SCIM checker (scim2-cli running scim2-tester) against a real identity
process: every check that applies to what ServiceProviderConfig advertises must pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.mailbox import Mailbox, confirm
from tests.processes import QUICK_PASSWORDS, ROOT, free_ports, uvicorn, wait_until_ready

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"


def test_scim2_tester_passes_against_a_live_identity(tmp_path: Path):
    port, smtp_port = free_ports(2)
    mailbox = Mailbox(smtp_port).__enter__()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")},
        "IDENTITY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/identity.db",
        "IDENTITY_INTERNAL_TOKEN": "scim-conformance",
        "IDENTITY_TOKEN_ISSUER": url,
        "IDENTITY_LOG_LEVEL": "WARNING",
        **QUICK_PASSWORDS,
        **mailbox.env(),
    }
    subprocess.run(
        [sys.executable, "-m", "services.migrate", "upgrade", "identity"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    server = uvicorn("identity", port, env, log=tmp_path / "identity.log")
    try:
        wait_until_ready(server, url)
        with httpx.Client(base_url=url, timeout=30) as client:
            account = {
                "email": "root@agency.example",
                "password": PASSWORD,
                "handle": "root",
                "display_name": "Root",
            }
            assert client.post("/api/v1/accounts", json=account).status_code == 202
            confirm(client, mailbox.token_for("root@agency.example"), PASSWORD)
            grant = [
                sys.executable,
                "-m",
                "services.identity.manage",
                "grant-role",
                "root@agency.example",
                "admin",
            ]
            subprocess.run(grant, cwd=ROOT, env=env, check=True, capture_output=True)
            login = {"grant_type": "password", "username": "root@agency.example", "password": PASSWORD}
            admin = client.post("/api/v1/auth/token", data=login).json()["access_token"]
            created = client.post(
                "/api/v1/admin/clients",
                json={"name": "HR", "scopes": ["scim"]},
                headers={"Authorization": f"Bearer {admin}"},
            ).json()
            token = client.post(
                "/api/v1/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": created["client_id"],
                    "client_secret": created["client_secret"],
                },
            ).json()["access_token"]
        scim2 = Path(sys.executable).parent / "scim2"
        result = subprocess.run(
            [str(scim2), "--url", f"{url}/scim/v2", "-h", f"Authorization: Bearer {token}", "test"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        output = result.stdout + result.stderr
        successes = output.count("SUCCESS")
        errors = [line for line in output.splitlines() if line.startswith("ERROR")]
        print(f"scim2-tester: {successes} checks passed, {len(errors)} failed")
        assert errors == [], output[-3000:]
        assert successes >= 100, output[-3000:]
    finally:
        server.stop(timeout=15)
        mailbox.__exit__()
