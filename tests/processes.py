"""Real processes for the tests: free ports, starting and stopping a child process (a uvicorn
service, a stub server, the launcher and its six processes), waiting until it answers, and its
last lines of output for the message when it does not.

Ports come from a range below the kernel's ephemeral ports (which outgoing connections use),
split between pytest-xdist workers, so that two workers never hand out the same port."""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from signal import SIGCONT, SIGINT, SIGKILL, SIGTERM
from typing import IO, TypeVar

import httpx

from kit.serving import HTTP_PROTOCOL
from launcher import topology
from tests.mailbox import wait_for_logged_token

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = topology.COMPONENTS  # the launcher's six processes
T = TypeVar("T")

# Ports handed out to the tests: below the ephemeral range (32768 and up on Linux), above the
# usual fixed ports of development servers.
PORT_RANGE = range(20000, 32768)


def _worker() -> tuple[int, int]:
    """This pytest-xdist worker's index and the number of workers ((0, 1) outside xdist)."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(name.removeprefix("gw")) if name.startswith("gw") else 0
    return index, max(count, index + 1)


def _port_candidates() -> Iterator[int]:
    """This worker's share of PORT_RANGE, from a random start and round again: a port is
    offered again only after all the others, long after the test that had it has stopped."""
    index, count = _worker()
    size = len(PORT_RANGE) // count
    share = PORT_RANGE[index * size : (index + 1) * size]
    start = random.randrange(len(share))
    return itertools.cycle([*share[start:], *share[:start]])


_candidates = _port_candidates()
_candidates_lock = threading.Lock()


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports nobody listens on, from this worker's share of the range."""
    ports: list[int] = []
    with _candidates_lock:
        while len(ports) < count:
            port = next(_candidates)
            if port not in ports and _bindable(port):
                ports.append(port)
    return ports


# For clients of the real processes: an idle connection is dropped after 2 s, before uvicorn's
# keep-alive (5 s) closes it from the other end, so no request goes out on a socket the server
# is closing at that very moment ("Server disconnected without sending a response"). The
# gateway's upstream pools do the same (GATEWAY_UPSTREAM_KEEPALIVE_SECONDS).
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=2.0)


def free_port() -> int:
    (port,) = free_ports(1)
    return port


def eventually(check: Callable[[], T], timeout: float = 90.0, interval: float = 0.2) -> T:
    """Calls ``check`` until it returns something true or ``timeout`` passes; returns the last
    result (falsy when time ran out)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def answers(url: str, status: int | None = None) -> bool:
    """Whether ``url`` answers at all (or with ``status``, when given)."""
    try:
        resp = httpx.get(url, timeout=1)
    except httpx.HTTPError:
        return False
    return status is None or resp.status_code == status


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def uvicorn_args(app: str, port: int, *options: str) -> list[str]:
    """The command line that serves ``app`` (an APPS key or a factory's import path) on
    ``port`` of 127.0.0.1 with asyncio's loop, kit.serving's protocol and no Server header, as
    the launcher does (decisions 0015, 0052)."""
    factory = topology.APPS.get(app, app)
    args = [sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1", "--port", str(port)]
    return [
        *args,
        "--no-access-log",
        "--no-server-header",
        "--loop",
        "asyncio",
        "--http",
        HTTP_PROTOCOL,
        *options,
    ]


@dataclass
class Process:
    """A child process started from the project's folder. Its output goes to ``log`` (kept),
    or to a temporary file removed when it stops; either is quoted when it fails to start."""

    args: list[str]
    env: Mapping[str, str] | None = None
    log: Path | None = None
    name: str = ""
    cwd: Path = ROOT
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log_file: IO[bytes] | None = field(default=None, repr=False)
    _temporary_log: bool = field(default=False, repr=False)

    def start(self) -> Process:
        if self.log is None or self._temporary_log:
            handle, path = tempfile.mkstemp(prefix="govsocial-test-", suffix=".log")
            os.close(handle)
            self.log, self._temporary_log = Path(path), True
        self._log_file = self.log.open("ab")
        env = dict(self.env) if self.env is not None else None
        self.process = subprocess.Popen(
            self.args, cwd=self.cwd, env=env, stdout=self._log_file, stderr=subprocess.STDOUT
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL: the process ends at once, without a chance to finish its work."""
        self.signal(SIGKILL)
        self.wait()

    def wait(self, timeout: float | None = None) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self, timeout: float = 30, signum: int = SIGTERM) -> int | None:
        """Asks the process to end (``signum``; a stopped process is woken first), kills it
        after ``timeout`` seconds; returns its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(SIGCONT)
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._temporary_log and self.log is not None:
            self.log.unlink(missing_ok=True)
        return self.process.returncode

    def output(self) -> str:
        """Everything the process wrote so far."""
        if self.log is None:
            return ""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        """The last lines of its output, for a failure message."""
        return "\n".join(self.output().splitlines()[-lines:])

    def wait_until_answers(self, url: str, timeout: float = 60, status: int | None = None) -> None:
        """Waits until ``url`` answers (with ``status`` when given); fails with the log's tail
        when the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError(f"{self.name or self.args[:4]} exited: {self.tail()}")
            if answers(url, status):
                return
            time.sleep(0.1)
        raise AssertionError(f"{url} never answered: {self.tail()}")

    def wait_until_listening(self, port: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError(f"{self.name or self.args[:4]} exited: {self.tail()}")
            if listening(port):
                return
            time.sleep(0.05)
        raise AssertionError(f"nothing listens on port {port}: {self.tail()}")


def uvicorn(
    app: str,
    port: int,
    env: Mapping[str, str],
    *,
    log: Path | None = None,
    name: str = "",
    options: tuple[str, ...] = (),
) -> Process:
    """A service or the gateway served by uvicorn on ``port``, started, not yet ready."""
    return Process(uvicorn_args(app, port, *options), env, log, name or app).start()


def wait_until_ready(process: Process, url: str, timeout: float = 60) -> None:
    """Waits until the service at ``url`` says it is ready (/health/ready answers 200)."""
    process.wait_until_answers(url + "/health/ready", timeout, status=200)


# -- the launcher: the six processes as `make run` starts them -------------------------------

# Argon2 as cheap as in the in-process suite (tests/suite.py) and the deployment tests' cluster:
# a registration or a sign-in costs milliseconds instead of up to a second of both cores at the
# default cost (64 MiB, 3 passes, 4 lanes), and the end-to-end tests register and sign in
# dozens of people. No test through the processes measures hashing.
QUICK_PASSWORDS = {
    "IDENTITY_PASSWORD_TIME_COST": "1",
    "IDENTITY_PASSWORD_MEMORY_COST": "1024",
    "IDENTITY_PASSWORD_PARALLELISM": "1",
}


def launch(
    var: Path,
    ports: Mapping[str, int],
    *extra: str,
    database_urls: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[str]:
    """The launcher on ``ports``; each service on SQLite under ``var``, or on the database
    ``database_urls`` names for it; ``env`` added to this process's environment. The four
    processes' output comes on its stdout."""
    args = [sys.executable, "-m", "launcher", "--var", str(var), "--ready-timeout", "90", *extra]
    for name, port in ports.items():
        args += [f"--{name}-port", str(port)]
    if "--gateway-metrics-port" not in extra:
        args += ["--gateway-metrics-port", str(free_port())]
    child_env = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
    child_env.update({f"{name.upper()}_DATABASE_URL": url for name, url in (database_urls or {}).items()})
    child_env.update(env or {})
    return subprocess.Popen(
        args, cwd=ROOT, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
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
        process.send_signal(SIGINT)
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


@dataclass
class Running:
    """The launcher and its six processes; ``output`` fills as they write."""

    process: subprocess.Popen[str]
    ports: dict[str, int]
    var: Path
    output: list[str]
    metrics_port: int | None = None

    def url(self, component: str = "gateway") -> str:
        return f"http://127.0.0.1:{self.ports[component]}"

    def token_for(self, handle: str) -> str:
        """The verification token identity wrote to its log for the registration of ``handle``
        (no SMTP server)."""
        return wait_for_logged_token(self.output, handle)

    def tail(self, lines: int = 50) -> str:
        return "".join(self.output[-lines:])


@contextlib.contextmanager
def launched(
    var: Path,
    *extra: str,
    env: Mapping[str, str] | None = None,
    database_urls: Mapping[str, str] | None = None,
) -> Iterator[Running]:
    """The suite as `make run` starts it, on free ports (the metrics' too), with cheap password
    hashing (QUICK_PASSWORDS) and ``env`` added to the environment; waits until it says it is
    running and stops it as Ctrl-C does."""
    *component_ports, metrics_port = free_ports(len(COMPONENTS) + 1)
    ports = dict(zip(COMPONENTS, component_ports, strict=True))
    output: list[str] = []
    metrics = ("--gateway-metrics-port", str(metrics_port))
    env = {**QUICK_PASSWORDS, **(env or {})}
    process = launch(var, ports, *metrics, *extra, database_urls=database_urls, env=env)
    reader = drain(process, output)
    try:
        assert wait_for_line(process, "The suite is running", output), "".join(output[-50:])
        yield Running(process, ports, var, output, metrics_port)
    finally:
        stop(process, reader)
