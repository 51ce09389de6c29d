"""Real processes for the gateway's tests: stub upstreams and a gateway started with uvicorn."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.e2e.conftest import ROOT, free_ports


def wait_until_answers(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


@dataclass
class Process:
    args: list[str]
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Stub(Process):
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        wait_until_answers(self.url + "/_seen")

    def seen(self) -> int:
        count: int = httpx.get(self.url + "/_seen", timeout=5).json()["seen"]
        return count


def stub(name: str, jwks: Path | None = None) -> Stub:
    (port,) = free_ports(1)
    args = [sys.executable, "-m", "tests.gateway.stub_upstream", "--port", str(port), "--name", name]
    if jwks is not None:
        args += ["--jwks", str(jwks)]
    process = Stub(args, port=port)
    process.start()
    return process


def gateway(upstreams: Mapping[str, str], **settings: str) -> tuple[Process, str]:
    """A gateway process in front of ``upstreams`` ({service: url}); settings as GATEWAY_*."""
    (port,) = free_ports(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({f"GATEWAY_{name.upper()}_URL": url for name, url in upstreams.items()})
    env.update({f"GATEWAY_{key.upper()}": value for key, value in settings.items()})
    args = [sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory"]
    args += ["--port", str(port), "--no-access-log", "--log-level", "warning", "--loop", "asyncio"]
    process = Process(args, env)
    process.start()
    url = f"http://127.0.0.1:{port}"
    wait_until_answers(url + "/health/live")
    return process, url
