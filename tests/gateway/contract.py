"""``make contract``: schemathesis against the gateway's live document, on a real suite.

Starts the six processes with the launcher on free ports and fresh databases (SQLite files, or
with ``--backend postgresql`` one PostgreSQL database per service, created on the server
TEST_DATABASE_URL names and dropped afterwards, as the test suite does), registers a person,
makes them an administrator (the operator's command), and runs ``schemathesis run`` with every
check: once over every operation but SCIM's with that administrator's token, once over SCIM's
with an integrator client's token (scope ``scim``), once in the stateful phase alone over the
operations the document's links chain (create, then read, change and delete what was created:
gateway.openapi.LINKS); then sends every operation the hostile
inputs of ``tests.gateway.hostile_probes`` (NUL, lone surrogates, huge integers and cursor
keys), which must get a 4xx problem, never a 5xx; then stops the suite. The gateway's rate
limits are off for the run (they are tested on their own), so that the generated requests reach
the services. Reports go to ``var/contract/``; the exit code is the worst of the four parts'.

    python -m tests.gateway.contract [--backend sqlite|postgresql] [--max-examples N] [--seed N]
        [-- extra schemathesis args]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from launcher.topology import Layout, environment
from tests.conftest import PostgresDatabases
from tests.gateway import hostile_probes
from tests.mailbox import confirm, wait_for_logged_token
from tests.processes import LIMITS, ROOT, Running, launched

PASSWORD = "correct horse battery staple"
REPORTS = ROOT / "var" / "contract"


EMAIL = "contract@agency.example"


def _sign_in(base: str, *, register: bool = True, output: list[str] | None = None) -> str:
    with httpx.Client(base_url=base, timeout=30, limits=LIMITS) as client:
        email = EMAIL
        if register:
            resp = client.post(
                "/api/v1/accounts",
                json={"email": email, "password": PASSWORD, "handle": "contract", "display_name": "Contract"},
            )
            if resp.status_code != 202:
                raise SystemExit(f"could not register: {resp.status_code} {resp.text}")
            confirm(client, wait_for_logged_token(output or [], "contract"), PASSWORD)
        form = {"grant_type": "password", "username": email, "password": PASSWORD}
        token = client.post("/api/v1/auth/token", data=form)
        if token.status_code != 200:
            raise SystemExit(f"could not sign in: {token.status_code} {token.text}")
        access: str = token.json()["access_token"]
        return access


def summarize(ndjson: Path) -> dict[str, object]:
    """Operations exercised, requests sent and failed checks, read from schemathesis's events."""
    operations: set[str] = set()
    requests = 0
    failed: dict[str, set[str]] = {}
    for line in ndjson.read_text().splitlines():
        event = json.loads(line).get("ScenarioFinished")
        if event is None:
            continue
        recorder = event["recorder"]
        label = recorder.get("label", "")
        if label.split(" ", 1)[0].isupper():
            operations.add(label)
        requests += len(recorder.get("interactions", {}))
        for checks in recorder.get("checks", {}).values():
            for check in checks:
                if str(check.get("status", "")).lower() == "failure":
                    failed.setdefault(check.get("name", "?"), set()).add(label)
    return {
        "operations": len(operations),
        "requests": requests,
        "failed_checks": {name: sorted(labels) for name, labels in sorted(failed.items())},
    }


def _make_admin(running: Running, identity_url: str, email: str) -> None:
    """The first administrator is made the operator's way (services.identity.manage), with
    identity's subscribers as the launcher set them, so that moderation and records learn of the role."""
    subscribers = environment(Layout("127.0.0.1", running.ports), internal_token="", var_dir=str(running.var))
    env = {
        **os.environ,
        "IDENTITY_DATABASE_URL": identity_url,
        "IDENTITY_SUBSCRIBERS": subscribers["IDENTITY_SUBSCRIBERS"],
    }
    command = [sys.executable, "-m", "services.identity.manage", "grant-role", email, "admin"]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)


def _staff_known(base: str, token: str) -> None:
    """Waits until moderation and records hold the administrator as staff (their events are
    about a second behind), so that their operations are reached past the 403."""
    deadline = time.monotonic() + 60
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=30, limits=LIMITS) as client:
        for service, path in (
            ("moderation", "/api/v1/moderation/stats"),
            ("records", "/api/v1/records/policies"),
        ):
            while client.get(path, headers=headers).status_code != 200:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{service} never learnt of the administrator's role")
                time.sleep(0.2)


def _scim_client_token(base: str, admin_token: str) -> str:
    """An integrator client with the scim scope, as an HR system would have."""
    with httpx.Client(base_url=base, timeout=30, limits=LIMITS) as client:
        created = client.post(
            "/api/v1/admin/clients",
            json={"name": "HR (contract test)", "scopes": ["scim"]},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        if created.status_code != 201:
            raise SystemExit(f"could not create a client: {created.status_code} {created.text}")
        form = {
            "grant_type": "client_credentials",
            "client_id": created.json()["client_id"],
            "client_secret": created.json()["client_secret"],
        }
        token: str = client.post("/api/v1/auth/token", data=form).json()["access_token"]
        return token


def _schemathesis(base: str, token: str, args: argparse.Namespace, scope: list[str]) -> int:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{base}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--max-examples",
        str(args.max_examples),
        "--seed",
        str(args.seed),
        "--workers",
        "1",  # hypothesis's lambda introspection is not thread-safe on Python 3.11
        "--request-timeout",
        "10",
        "--report",
        "junit,ndjson",
        "--report-dir",
        str(REPORTS),
        *scope,
        *args.extra,
    ]
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, check=False)
    elapsed = time.monotonic() - started
    print(f"schemathesis finished in {elapsed:.0f} s with exit code {result.returncode}")
    reports = sorted(REPORTS.glob("ndjson-*.ndjson"), key=lambda p: p.stat().st_mtime)
    if reports:
        summary = summarize(reports[-1])
        print(f"{summary['operations']} operations, {summary['requests']} requests")
        for name, labels in summary["failed_checks"].items():  # type: ignore[union-attr]
            print(f"  {name}: {len(labels)} operations: {', '.join(labels)}")
    return result.returncode


def linked_operations(document: dict[str, Any]) -> list[str]:
    """The ids of the operations whose answers have links, and of those the links lead to."""
    ids: set[str] = set()
    for item in document["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for response in operation.get("responses", {}).values():
                for link in response.get("links", {}).values():
                    ids |= {operation["operationId"], link["operationId"]}
    return sorted(ids)


# Deleting a group archives it (an administrator's `hard=true` deletes it for good): the archived
# group is still read, and restored, so a read after that DELETE is no use after free. Its chain
# runs without that check (a per-operation setting in schemathesis.toml does not hold against
# `--checks all`).
ARCHIVED_ON_DELETE = frozenset({"create_group", "get_group", "update_group", "delete_group"})


def _stateful(base: str, token: str, args: argparse.Namespace) -> int:
    """Schemathesis's stateful phase over the linked operations: the created thing's id goes to
    the operations on it, so they are reached past the 404 a random id gets."""
    document = httpx.get(f"{base}/openapi.json", timeout=30).json()
    chained = linked_operations(document)
    if not chained:
        print("stateful: the document has no links")
        return 1
    codes = []
    for ids, extra in (
        ([i for i in chained if i not in ARCHIVED_ON_DELETE], []),
        ([i for i in chained if i in ARCHIVED_ON_DELETE], ["--exclude-checks", "use_after_free"]),
    ):
        pattern = "^(" + "|".join(ids) + ")$"
        scope = ["--phases", "stateful", "--include-operation-id-regex", pattern, *extra]
        codes.append(_schemathesis(base, token, args, scope))
    return max(codes)


def _hostile(base: str, token: str, scim: str) -> int:
    started = time.monotonic()
    document = httpx.get(f"{base}/openapi.json", timeout=30).json()
    sent, failures = hostile_probes.probe(
        base, document, lambda target: scim if target.startswith("/scim/") else token
    )
    print(f"hostile inputs: {sent} requests in {time.monotonic() - started:.0f} s, {len(failures)} failed")
    for failure in failures:
        print(f"  {failure}")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.gateway.contract", description=__doc__)
    parser.add_argument("--max-examples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="postgresql: databases on the server TEST_DATABASE_URL names",
    )
    parser.add_argument("extra", nargs="*", help="more schemathesis arguments (after --)")
    args = parser.parse_args(argv)

    REPORTS.mkdir(parents=True, exist_ok=True)
    postgres = None
    if args.backend == "postgresql":
        if not os.environ.get("TEST_DATABASE_URL"):
            parser.error("--backend postgresql needs TEST_DATABASE_URL (a server to create databases on)")
        postgres = PostgresDatabases(os.environ["TEST_DATABASE_URL"])
        postgres.create()
    try:
        with tempfile.TemporaryDirectory(prefix="contract-") as var:
            urls = postgres.urls if postgres else None
            identity_url = urls["identity"] if urls else f"sqlite+aiosqlite:///{var}/identity.db"
            print(f"contract run on {args.backend}", flush=True)
            return _against(Path(var), urls, identity_url, args)
    finally:
        if postgres is not None:
            postgres.drop()


def _against(var: Path, urls: dict[str, str] | None, identity_url: str, args: argparse.Namespace) -> int:
    """The four parts against a suite started on ``var`` (and ``urls``' databases), its rate
    limits off; the suite is stopped afterwards."""
    with launched(var, env={"GATEWAY_RATE_LIMIT_ENABLED": "false"}, database_urls=urls) as running:
        base = running.url()
        _sign_in(base, output=running.output)
        _make_admin(running, identity_url, EMAIL)
        token = _sign_in(base, register=False)  # now with the admin role
        _staff_known(base, token)
        scim = _scim_client_token(base, token)
        # An administrator's token reaches every operation but SCIM's, which take an
        # integrator client's token; each part runs with the token it needs.
        codes = [
            _schemathesis(base, token, args, ["--exclude-path-regex", "^/scim/"]),
            _schemathesis(base, scim, args, ["--include-path-regex", "^/scim/"]),
            _stateful(base, token, args),
            _hostile(base, token, scim),
        ]
        return max(codes)


if __name__ == "__main__":
    raise SystemExit(main())
