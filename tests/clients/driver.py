"""``make clients``: clients generated from openapi.json run the whole flow against a live suite.

Generates, from the committed document, a Python client (openapi-python-client), a TypeScript
one with openapi-typescript and openapi-fetch and one with @hey-api/openapi-ts and its fetch
client (npm, pinned in ``tests/clients/package.json`` and its lock, installed with ``npm ci``
into ``var/clients/ts``, again only when the lock changes), compiles the TypeScript with
``tsc --strict``, and checks that every JSON body and success answer has a declared shape in
each client. Meanwhile it starts the suite with the launcher on free ports and fresh SQLite
databases (rate limits off, http webhooks to 127.0.0.1 allowed), makes an administrator who
creates an integrator client (scopes scim and webhooks), then runs the three flows at once,
each with its own people; stops the suite. Generated code stays under ``var/clients/``. Exits
1 when any part failed; the summary names each part and each flow's steps say what failed.

    python -m tests.clients [--spec openapi.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.clients import python_flow
from tests.clients.generated import Generated, generate
from tests.gateway.contract import _make_admin, _sign_in
from tests.processes import LIMITS, ROOT, Running, launched

HERE = Path(__file__).resolve().parent
WORK = ROOT / "var" / "clients"
TS = WORK / "ts"
NPM_FILES = ("package.json", "package-lock.json", "tsconfig.json")
SUITE_ENV = {
    "GATEWAY_RATE_LIMIT_ENABLED": "false",
    "IDENTITY_WEBHOOK_ALLOW_HTTP": "true",
    "IDENTITY_WEBHOOK_ALLOWED_HOSTS": '["127.0.0.1"]',
}


class Report:
    """Each part's outcome, printed as it ends and summed up at the end."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, bool, float]] = []
        self.started = time.monotonic()

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        print(f"== {name}", flush=True)
        began = time.monotonic()
        passed = False
        try:
            yield
            passed = True
        except (AssertionError, RuntimeError, subprocess.CalledProcessError) as exc:
            print(f"   {exc}", flush=True)
        finally:
            self.parts.append((name, passed, time.monotonic() - began))

    def record(self, name: str, passed: bool, began: float) -> None:
        self.parts.append((name, passed, time.monotonic() - began))

    def summary(self) -> int:
        print(f"\n== clients: {time.monotonic() - self.started:.0f} s in all")
        for name, passed, seconds in self.parts:
            print(f"   {'PASS' if passed else 'FAIL'}  {name} ({seconds:.0f} s)")
        return 0 if all(passed for _, passed, _ in self.parts) else 1


def _run(command: list[str], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, text=True, capture_output=True, check=False, **kwargs)  # type: ignore[call-overload, no-any-return]


def _npm_install() -> None:
    """``npm ci`` into var/clients/ts, skipped when the lock is the one installed last."""
    TS.mkdir(parents=True, exist_ok=True)
    for name in NPM_FILES:
        shutil.copyfile(HERE / name, TS / name)
    lock = (HERE / "package-lock.json").read_text()
    stamp = TS / "node_modules" / ".installed-lock.json"
    if stamp.exists() and stamp.read_text() == lock:
        return
    result = _run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], TS)
    if result.returncode != 0:
        raise RuntimeError(f"npm ci failed:\n{result.stdout}{result.stderr}")
    stamp.write_text(lock)


def _generate_typescript(spec: Path) -> None:
    generated = TS / "gen"
    shutil.rmtree(generated, ignore_errors=True)
    shutil.rmtree(TS / "out", ignore_errors=True)
    shutil.rmtree(TS / "src", ignore_errors=True)
    shutil.copytree(HERE / "ts", TS / "src")
    bin_ = TS / "node_modules" / ".bin"
    # Request fields that have a default are optional: the document's own `required` says
    # which answer fields are always there.
    commands = [
        [
            str(bin_ / "openapi-typescript"),
            str(spec),
            "--default-non-nullable",
            "false",
            "-o",
            "gen/openapi-fetch/schema.d.ts",
        ],
        [str(bin_ / "openapi-ts"), "-i", str(spec), "-o", "gen/hey-api", "-c", "@hey-api/client-fetch"],
    ]
    for command in commands:
        result = _run(command, TS)
        if result.returncode != 0:
            raise RuntimeError(f"{Path(command[0]).name} failed:\n{result.stdout}{result.stderr}")


def _compile() -> None:
    """``tsc --strict`` over the generated clients and the flows. tsc writes the JavaScript
    even when types do not check, so that the flows still run and show what works."""
    result = _run([str(TS / "node_modules" / ".bin" / "tsc"), "-p", "tsconfig.json"], TS)
    if result.returncode != 0:
        errors = [line for line in result.stdout.splitlines() if "error TS" in line]
        raise AssertionError(f"tsc --strict: {len(errors)} errors\n   " + "\n   ".join(errors))


def _check_python_models(api: Generated, spec: Path) -> None:
    document = json.loads(spec.read_text())
    untyped = api.untyped_bodies(document) + api.untyped_successes(document)
    if untyped:
        raise AssertionError(
            f"{len(untyped)} bodies or success answers are no generated model in Python:\n   "
            + "\n   ".join(untyped)
        )


def _check_typescript_types(spec: Path) -> None:
    command = [
        "node",
        "out/src/check-types.js",
        str(spec),
        "gen/openapi-fetch/schema.d.ts",
        "gen/hey-api/types.gen.ts",
    ]
    result = _run(command, TS)
    print("   " + "\n   ".join(result.stdout.splitlines()), flush=True)
    if result.returncode != 0:
        raise AssertionError(f"check-types exited {result.returncode} {result.stderr[-2000:]}")


def _integrator_token(base: str, admin_token: str) -> str:
    """An integrator client's token with the scim and webhooks scopes, as an HR system has."""
    with httpx.Client(base_url=base, timeout=30, limits=LIMITS) as client:
        created = client.post(
            "/api/v1/admin/clients",
            json={"name": "HR (client flows)", "scopes": ["scim", "webhooks"]},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        if created.status_code != 201:
            raise RuntimeError(f"could not create a client: {created.status_code} {created.text}")
        form = {
            "grant_type": "client_credentials",
            **{k: created.json()[k] for k in ("client_id", "client_secret")},
        }
        token: str = client.post("/api/v1/auth/token", data=form).json()["access_token"]
        return token


def _mirror(lines: list[str], path: Path, stop: threading.Event) -> threading.Thread:
    """Copies the suite's output to ``path`` as it comes: the flows read mailed tokens there."""

    def run() -> None:
        written = 0
        with path.open("a") as out:
            while not stop.is_set():
                new = lines[written:]
                out.writelines(new)
                out.flush()
                written += len(new)
                stop.wait(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@dataclass
class Clients:
    """What the preparation made: the Python client, and whether the TypeScript was emitted."""

    python: Generated | None = None
    typescript: bool = False


def _prepare(report: Report, spec: Path, clients: Clients) -> None:
    """Generates and compiles the clients and checks their models (while the suite starts)."""
    shutil.rmtree(TS / "out", ignore_errors=True)
    with report.part("generate: python (openapi-python-client)"):
        shutil.rmtree(WORK / "python", ignore_errors=True)
        generate(spec, WORK / "python")
        clients.python = Generated(WORK / "python")
    if clients.python is not None:
        with report.part("models: python, every JSON body and success answer is a generated model"):
            _check_python_models(clients.python, spec)
    with report.part("npm ci (tests/clients/package-lock.json)"):
        _npm_install()
    with report.part("generate: typescript (openapi-typescript, hey-api)"):
        _generate_typescript(spec)
    if (TS / "gen" / "hey-api").exists():
        with report.part("compile: tsc --strict"):
            _compile()
    clients.typescript = (TS / "out" / "src" / "flow-hey-api.js").exists()
    if clients.typescript:
        with report.part("models: typescript, every JSON success answer has a declared type"):
            _check_typescript_types(spec)


def _flows(report: Report, running: Running, var: Path, clients: Clients, prepared: threading.Thread) -> None:
    """The three flows at once against the running suite (each with its own people)."""
    base = running.url()
    log = var / "suite.log"
    stop = threading.Event()
    mirror = _mirror(running.output, log, stop)
    try:
        with report.part("suite: administrator and integrator client"):
            _sign_in(base, output=running.output)
            _make_admin(running, f"sqlite+aiosqlite:///{var}/identity.db", "contract@agency.example")
            client_token = _integrator_token(base, _sign_in(base, register=False))
        prepared.join()
        env = {**os.environ, "SUITE_URL": base, "MAIL_LOG": str(log), "CLIENT_TOKEN": client_token}
        began = time.monotonic()
        node = {
            name: subprocess.Popen(["node", f"out/src/{script}"], cwd=TS, env=env)
            for name, script in (("openapi-fetch", "flow-openapi-fetch.js"), ("hey-api", "flow-hey-api.js"))
            if clients.typescript
        }
        if clients.python is not None:
            steps = python_flow.run(clients.python, base, log, client_token)
            report.record("flow: python (openapi-python-client)", not steps.failed, began)
        for name, process in node.items():
            report.record(f"flow: typescript ({name})", process.wait(timeout=300) == 0, began)
    finally:
        stop.set()
        mirror.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.clients", description=__doc__)
    parser.add_argument("--spec", type=Path, default=ROOT / "openapi.json", help="the OpenAPI document")
    args = parser.parse_args(argv)
    report = Report()
    clients = Clients()
    prepared = threading.Thread(target=_prepare, args=(report, args.spec.resolve(), clients), daemon=True)
    prepared.start()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="clients-") as var,
            launched(Path(var), env=SUITE_ENV) as running,
        ):
            _flows(report, running, Path(var), clients, prepared)
    finally:
        prepared.join()
    return report.summary()


if __name__ == "__main__":
    sys.exit(main())
