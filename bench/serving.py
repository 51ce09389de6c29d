"""What ``kit.serving``'s protocol saves each answer: ``python -m bench.serving``.

Serves the floor (``bench.floor``) alone, and a gateway whose every upstream is the floor (a
home page with a token: the gateway's own work and one hop), first with uvicorn's own protocol
and then with ``kit.serving.HttpProtocol``, alternating, ``--pairs`` times; each run is wrk on
loopback (``--connections``, ``--seconds`` after a two-second warm-up), and the CPU the serving
processes spent per request is read from ``/proc`` (decision 0052).

Standalone: no service, no database, wrk on the PATH. Not a test: ``make bench`` does not run
it; its output goes to ``bench/results/serving.json`` (``--results``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from jose import jwt

from kit.serving import HTTP_PROTOCOL
from kit.tokens import ACCESS_TOKEN_TYPE
from services.identity.keys import SigningKey

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "serving.json"
AUDIENCE = "govsocial-api"
PROTOCOLS = {"uvicorn": [], "kit.serving": ["--http", HTTP_PROTOCOL]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the process ended ({process.returncode})")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready after 60 s")


@contextmanager
def _serving(
    app: list[str], options: list[str], env: dict[str, str], ready: str
) -> Iterator[tuple[str, int]]:
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", *app, "--port", str(port), "--no-access-log"]
    command += ["--log-level", "warning", "--timeout-keep-alive", "5", "--loop", "asyncio", *options]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(url + ready, process)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(30)


def _wrk(url: str, script: Path, connections: int, seconds: int, pids: list[int]) -> dict[str, float]:
    """req/s and the CPU ``pids`` spent per request, in µs, over a run after a warm-up."""
    base = ["wrk", "-t2", f"-c{connections}", "-s", str(script), url]
    subprocess.run([*base, "-d2s"], capture_output=True, check=True)
    before = sum(_cpu_seconds(pid) for pid in pids)
    out = subprocess.run([*base, f"-d{seconds}s"], capture_output=True, text=True, check=True).stdout
    spent = sum(_cpu_seconds(pid) for pid in pids) - before
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise SystemExit(f"{url}: answers that were not 2xx\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": round(rps, 1), "cpu_us_per_request": round(spent * 1e6 / requests, 1)}


def _token(key: SigningKey, issuer: str) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
        "scope": "",
        "roles": [],
        "ctx": "professional",
    }
    headers = {"kid": key.kid, "typ": ACCESS_TOKEN_TYPE}
    return str(jwt.encode(claims, key.private_pem.decode(), algorithm="RS256", headers=headers))


def measure(protocol: str, args: argparse.Namespace, key: SigningKey, work: Path) -> dict[str, Any]:
    options = PROTOCOLS[protocol]
    floor_env = {"BENCH_JWKS": json.dumps({"keys": [key.public_jwk]})}
    plain = work / "plain.lua"
    plain.write_text("")
    with _serving(["bench.floor:app"], options, floor_env, "/floor") as (floor, floor_pid):
        alone = _wrk(floor + "/api/v1/timelines/home", plain, args.connections, args.seconds, [floor_pid])
        upstreams = ("IDENTITY", "FEED", "GROUPS", "MODERATION", "RECORDS", "MEDIA")
        gateway_env = {
            **{f"GATEWAY_{name}_URL": floor for name in upstreams},
            "GATEWAY_METRICS_PORT": "0",
            "GATEWAY_TOKEN_ISSUER": floor,
            "GATEWAY_RATE_LIMIT_ENABLED": "false",
            "GATEWAY_LOG_LEVEL": "WARNING",
        }
        app = ["gateway.app:create_app", "--factory"]
        with _serving(app, options, gateway_env, "/health/ready") as (gateway, gateway_pid):
            signed = work / "signed.lua"
            signed.write_text(f'wrk.headers["Authorization"] = "Bearer {_token(key, floor)}"\n')
            pids = [gateway_pid, floor_pid]
            over = _wrk(gateway + "/api/v1/timelines/home", signed, args.connections, args.seconds, pids)
    return {"floor": alone, "gateway_over_floor": over}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    key = SigningKey.generate()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in PROTOCOLS}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.pairs):
            for protocol in PROTOCOLS:
                run = measure(protocol, args, key, Path(folder))
                runs[protocol].append(run)
                line = ", ".join(
                    f"{what} {f['rps']} req/s {f['cpu_us_per_request']} µs" for what, f in run.items()
                )
                print(f"{protocol:<12} {line}", flush=True)
    figures = {"connections": args.connections, "seconds_per_run": args.seconds, "runs": runs}
    args.results.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"results: {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
