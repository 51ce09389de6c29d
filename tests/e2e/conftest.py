"""End-to-end fixtures: the real processes, started as `make run` starts them, on free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.mailbox import wait_for_logged_token

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("gateway", "identity", "feed", "groups")


def free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


@dataclass
class Running:
    """The launcher and its four processes; ``output`` fills as they write."""

    process: subprocess.Popen[str]
    ports: dict[str, int]
    var: Path
    output: list[str]

    def url(self, component: str = "gateway") -> str:
        return f"http://127.0.0.1:{self.ports[component]}"

    def token_for(self, handle: str) -> str:
        """The verification token identity wrote to its log for the registration of ``handle``
        (no SMTP server)."""
        return wait_for_logged_token(self.output, handle)


def launch(
    var: Path, ports: dict[str, int], *extra: str, database_urls: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """The launcher on ``ports``; each service on SQLite under ``var``, or on the database
    ``database_urls`` names for it."""
    args = [sys.executable, "-m", "launcher", "--var", str(var), "--ready-timeout", "90", *extra]
    for name, port in ports.items():
        args += [f"--{name}-port", str(port)]
    if "--gateway-metrics-port" not in extra:
        metrics_port = next(p for p in iter(lambda: free_ports(1)[0], None) if p not in ports.values())
        args += ["--gateway-metrics-port", str(metrics_port)]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
    env.update({f"{name.upper()}_DATABASE_URL": url for name, url in (database_urls or {}).items()})
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )


def drain(process: subprocess.Popen[str], output: list[str]) -> threading.Thread:
    """Reads the processes' output as it comes, so that a full pipe never blocks them."""

    def run() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def stop(process: subprocess.Popen[str], reader: threading.Thread) -> None:
    """Stops the launcher as Ctrl-C does (each process ends its work), killing it after 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    reader.join(timeout=5)
    if process.stdout is not None:
        process.stdout.close()


def wait_for_line(
    process: subprocess.Popen[str], needle: str, output: list[str], timeout: float = 120
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(needle in line for line in list(output)):
            return True
        if process.poll() is not None:
            time.sleep(0.2)
            return any(needle in line for line in list(output))
        time.sleep(0.1)
    return False


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    ports = dict(zip(COMPONENTS, free_ports(4), strict=True))
    output: list[str] = []
    process = launch(tmp_path / "var", ports)
    reader = drain(process, output)
    try:
        assert wait_for_line(process, "The suite is running", output), "".join(output[-50:])
        yield Running(process, ports, tmp_path / "var", output)
    finally:
        stop(process, reader)
