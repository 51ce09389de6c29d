"""``python -m launcher``: migrate, start the six processes, stop them all on Ctrl-C."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from kit.serving import HTTP_PROTOCOL
from launcher.topology import (
    APPS,
    COMPONENTS,
    DEFAULT_METRICS_PORT,
    DEFAULT_PORTS,
    METRICS_HOST,
    SERVICES,
    Layout,
    environment,
)

ROOT = Path(__file__).resolve().parent.parent


def uvicorn_command(component: str, host: str, port: int) -> list[str]:
    """How the launcher starts one component."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        APPS[component],
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--no-access-log",
        "--no-server-header",  # no process advertises its server (and the gateway's would repeat)
        "--loop",  # not uvloop, which accepts one connection per loop turn: decision 0015
        "asyncio",
        "--http",  # uvicorn's httptools protocol, a response in one write: decision 0052
        HTTP_PROTOCOL,
        "--timeout-graceful-shutdown",
        "10",
        "--timeout-keep-alive",
        "5",
    ]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def internal_token(var_dir: Path) -> str:
    """The shared service secret: generated once into var/, never committed."""
    path = var_dir / "internal-token"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def wait_ready(layout: Layout, processes: dict[str, subprocess.Popen[bytes]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    pending = set(COMPONENTS)
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            if processes[name].poll() is not None:
                return False
            try:
                with urllib.request.urlopen(layout.url(name) + "/health/ready", timeout=1) as resp:  # noqa: S310
                    if resp.status == 200:
                        pending.discard(name)
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(0.2)
    return not pending


def stop(processes: dict[str, subprocess.Popen[bytes]], grace: float = 10) -> None:
    for proc in processes.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in processes.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launcher", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("SUITE_HOST", "127.0.0.1"))
    parser.add_argument(
        "--var", default=os.environ.get("SUITE_VAR", "var"), help="folder for databases and keys"
    )
    for name in COMPONENTS:
        parser.add_argument(
            f"--{name}-port",
            type=int,
            default=int(os.environ.get(f"{name.upper()}_PORT", DEFAULT_PORTS[name])),
        )
    parser.add_argument(
        "--gateway-metrics-port",
        type=int,
        default=int(os.environ.get("GATEWAY_METRICS_PORT", DEFAULT_METRICS_PORT)),
        help=f"the gateway's /metrics, on {METRICS_HOST} only",
    )
    parser.add_argument("--ready-timeout", type=float, default=60)
    args = parser.parse_args(argv)

    layout = Layout(
        args.host,
        {name: getattr(args, f"{name}_port") for name in COMPONENTS},
        metrics_port=args.gateway_metrics_port,
    )
    busy = [f"{name} port {port}" for name, port in layout.ports.items() if port_in_use(args.host, port)]
    if port_in_use(METRICS_HOST, args.gateway_metrics_port):
        busy.append(f"gateway metrics port {args.gateway_metrics_port} (on {METRICS_HOST})")
    if busy:
        print(
            f"Cannot start: {', '.join(busy)} already in use on {args.host}. Stop what uses it, or choose "
            "other ports (GATEWAY_PORT, IDENTITY_PORT, FEED_PORT, GROUPS_PORT, MODERATION_PORT, "
            "GATEWAY_METRICS_PORT).",
            file=sys.stderr,
        )
        return 1

    var_dir = Path(args.var).resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **environment(layout, internal_token=internal_token(var_dir), var_dir=str(var_dir))}
    for service in SERVICES:  # a database URL set by the caller wins over the embedded default
        key = f"{service.upper()}_DATABASE_URL"
        if key in os.environ:
            env[key] = os.environ[key]
    migrate = subprocess.run(
        [sys.executable, "-m", "services.migrate", "upgrade", *SERVICES], env=env, cwd=ROOT, check=False
    )
    if migrate.returncode != 0:
        print("Migrations failed; nothing was started.", file=sys.stderr)
        return migrate.returncode

    processes: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    for name in COMPONENTS:
        command = uvicorn_command(name, args.host, layout.ports[name])
        processes[name] = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    if not wait_ready(layout, processes, args.ready_timeout):
        print("The suite did not become ready; stopping it.", file=sys.stderr)
        stop(processes)
        return 1
    gateway = layout.url("gateway")
    print(
        f"\nThe suite is running.\n  API:     {gateway}/api/v1/\n  OpenAPI: {gateway}/openapi.json\n"
        f"  Docs:    {gateway}/docs\n  Health:  {gateway}/health/ready\n"
        f"  Metrics: http://{METRICS_HOST}:{args.gateway_metrics_port}/metrics (this host only)\n"
        "Ctrl-C stops all six processes.\n",
        flush=True,
    )
    exit_code = 0
    while not stopping:
        for name, proc in processes.items():
            if proc.poll() is not None:
                print(f"{name} exited with code {proc.returncode}; stopping the suite.", file=sys.stderr)
                stopping = True
                exit_code = 1
                break
        time.sleep(0.2)
    stop(processes)
    print("Stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
