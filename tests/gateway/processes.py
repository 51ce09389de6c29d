"""Real processes for the gateway's tests: stub upstreams and a gateway started with uvicorn
(the starting, waiting and stopping is tests.processes')."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.processes import Process, free_port, uvicorn

__all__ = ["Process", "Stub", "gateway", "stub"]


@dataclass
class Stub(Process):
    """A stub upstream (tests.gateway.stub_upstream) that counts the requests it received."""

    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Stub:
        super().start()
        self.wait_until_answers(self.url + "/_seen")
        return self

    def seen(self) -> int:
        count: int = httpx.get(self.url + "/_seen", timeout=5).json()["seen"]
        return count


def stub(name: str, jwks: Path | None = None) -> Stub:
    port = free_port()
    args = [sys.executable, "-m", "tests.gateway.stub_upstream", "--port", str(port), "--name", name]
    if jwks is not None:
        args += ["--jwks", str(jwks)]
    return Stub(args, name=f"stub {name}", port=port).start()


def gateway(upstreams: Mapping[str, str], **settings: str) -> tuple[Process, str]:
    """A gateway process in front of ``upstreams`` ({service: url}); settings as GATEWAY_*."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({f"GATEWAY_{name.upper()}_URL": url for name, url in upstreams.items()})
    env.update({f"GATEWAY_{key.upper()}": value for key, value in settings.items()})
    process = uvicorn("gateway", port, env, name="gateway", options=("--log-level", "warning"))
    url = f"http://127.0.0.1:{port}"
    process.wait_until_answers(url + "/health/live")
    return process, url
