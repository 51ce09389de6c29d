"""``python -m bench`` (``make bench``): builds the dataset straight into the databases, starts
the suite as real processes, and measures with wrk on loopback. See bench/README.md."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
from jose import jwt
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import cpu, dataset, media, rate, report, search
from bench.profile import Profiler
from kit.migrations import upgrade
from kit.serving import HTTP_PROTOCOL
from kit.tokens import ACCESS_TOKEN_TYPE
from services.identity.keys import KeyRing

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SERVICES = ("identity", "feed", "groups", "moderation", "records", "media")
HOME = "/api/v1/timelines/home"
AUDIENCE = "govsocial-api"

# Set by --profile: samples the suite's processes during every measured run (bench/profile.py).
PROFILING: Profiler | None = None

WRK_SCRIPT = """
wrk.method = "{method}"
{authorization}
wrk.headers["Content-Type"] = "application/json"
{body}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"status_errors":%d,"socket_errors":%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


# Appended to WRK_SCRIPT: each request goes to the next of a list of paths, thread ``k`` of
# ``threads`` taking paths k+1, k+1+threads... so that no two requests share a path until the
# list is used up.
ROTATING = """
local paths = {{
{paths}
}}
local made = 0
setup = function(thread)
  thread:set("first", made)
  made = made + 1
end
local step = 0
request = function()
  local index = (first + step * {threads}) % #paths + 1
  step = step + 1
  return wrk.format(nil, paths[index])
end
"""
WRK_THREADS = 2


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def database_urls(backend: str, folder: Path) -> dict[str, str]:
    if backend == "sqlite":
        return {name: f"sqlite+aiosqlite:///{folder}/{name}.db" for name in SERVICES}
    base = make_url(
        os.environ.get("BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    )
    admin = create_engine(base.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    urls = {}
    with admin.connect() as conn:
        for name in SERVICES:
            database = f"gs_bench_{name}"
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{database}"'))
            urls[name] = base.set(database=database).render_as_string(hide_password=False)
    admin.dispose()
    return urls


class Suite:
    """The six processes, started by the launcher on free ports over the given databases."""

    def __init__(self, urls: dict[str, str], var: Path, ports: dict[str, int] | None = None) -> None:
        """``ports``: those of a suite stopped before, so that its addresses (the token issuer's
        among them) stay valid; else free ones."""
        if ports is None:
            ports = dict(zip(("gateway", *SERVICES), free_ports(len(SERVICES) + 1), strict=True))
        self.ports = ports
        self.var = var
        env = {**os.environ, "GATEWAY_RATE_LIMIT_ENABLED": "false"}
        for name in (*SERVICES, "gateway"):
            env[f"{name.upper()}_LOG_LEVEL"] = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
        for name, url in urls.items():
            env[f"{name.upper()}_DATABASE_URL"] = url
        command = [sys.executable, "-m", "launcher", "--var", str(var)]
        command += [arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))]
        self.log = (var / "suite.log").open("wb")
        self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{ports['gateway']}"
        self.feed = f"http://127.0.0.1:{ports['feed']}"
        self.identity = f"http://127.0.0.1:{ports['identity']}"
        wait_ready(self.url + "/health/ready", self.process, 120)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def token(self, persona_id: uuid.UUID, *, roles: Sequence[str] = ()) -> str:
        key = KeyRing.from_dir(self.var / "keys").active
        now = int(time.time())
        claims = {
            "iss": self.identity,
            "aud": AUDIENCE,
            "sub": str(persona_id),
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
            "scope": "",
            "roles": list(roles),
            "ctx": "professional",
        }
        return str(
            jwt.encode(
                claims,
                key.private_pem.decode(),
                algorithm="RS256",
                headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYPE},
            )
        )


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a process exited before {url} was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} not ready after {timeout} s")


def start_floor(var: Path, jwks: dict[str, Any]) -> tuple[subprocess.Popen[bytes], str]:
    (port,) = free_ports(1)
    command = [sys.executable, "-m", "uvicorn", "bench.floor:app", "--port", str(port), "--no-access-log"]
    command += ["--log-level", "warning", "--timeout-keep-alive", "5", "--loop", "asyncio"]
    command += ["--http", HTTP_PROTOCOL]
    log = (var / "floor.log").open("wb")
    env = {**os.environ, "BENCH_JWKS": json.dumps(jwks)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base + "/floor", process, 60)
    return process, base


def start_gateway_over(base: str, issuer: str, var: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A second gateway whose every upstream is the floor: what the gateway itself costs."""
    (port,) = free_ports(1)
    env = {
        **os.environ,
        "GATEWAY_IDENTITY_URL": base,
        "GATEWAY_FEED_URL": base,
        "GATEWAY_GROUPS_URL": base,
        "GATEWAY_MODERATION_URL": base,
        "GATEWAY_RECORDS_URL": base,
        "GATEWAY_MEDIA_URL": base,
        "GATEWAY_METRICS_PORT": "0",  # any free port: the suite's gateway holds the default
        "GATEWAY_TOKEN_ISSUER": issuer,
        "GATEWAY_RATE_LIMIT_ENABLED": "false",
        "GATEWAY_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    }
    command = [sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory", "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning", "--timeout-keep-alive", "5", "--loop", "asyncio"]
    command += ["--http", HTTP_PROTOCOL]
    log = (var / "gateway-over-floor.log").open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/health/ready", process, 60)
    return process, url


def wrk(
    url: str,
    token: str,
    connections: int,
    seconds: int,
    *,
    body: dict[str, Any] | None = None,
    method: str | None = None,
    paths: Sequence[str] = (),
    meter: cpu.CPUMeter | None = None,
    run: str | None = None,
    settled: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """A wrk run's figures; with ``meter``, the CPU each process spent per request, and when
    the benchmark profiles (``--profile``), ``run`` names the run's samples. ``paths``: requests
    go to each of these in turn (on ``url``'s host) instead of ``url``'s own. ``settled`` waits
    for the suite's background work to be done: called before the run and after it, so that
    the CPU counted is the run's own, the events its writes left to deliver included."""
    script = WRK_SCRIPT.format(
        method=method or ("POST" if body else "GET"),
        authorization=f'wrk.headers["Authorization"] = "Bearer {token}"' if token else "",
        body=f"wrk.body = [[{json.dumps(body)}]]" if body else "",
    )
    if paths:
        listed = ",\n".join(json.dumps(path) for path in paths)
        script += ROTATING.format(paths=listed, threads=WRK_THREADS)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    threads = str(WRK_THREADS)
    command = [
        "wrk",
        "-t",
        threads,
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "10s",
        "-s",
        fh.name,
        url,
    ]
    if settled:
        settled()
    start = meter.snapshot() if meter else None
    with PROFILING.sampling(run, seconds) if PROFILING and run else nullcontext() as profiles:
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if settled:
        settled()
    end = meter.snapshot() if meter else None
    os.unlink(fh.name)
    line = next(line for line in out.splitlines() if line.startswith("BENCH "))
    raw = json.loads(line[len("BENCH ") :])
    figure = {
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "requests": raw["requests"],
        "errors": raw["status_errors"] + raw["socket_errors"],
    }
    if figure["errors"]:  # which: answers of 400 or more, or connections that broke or timed out
        figure["status_errors"], figure["socket_errors"] = raw["status_errors"], raw["socket_errors"]
    if meter and start and end:
        figure["cpu"] = meter.per_request(start, end, raw["requests"])
    if PROFILING and run and profiles is not None:
        PROFILING.record(run, profiles, figure)
    return figure


def deep_cursor(base: str, token: str, pages: int) -> tuple[str | None, int]:
    """Walks the home timeline ``pages`` pages down; returns the cursor of the deepest page
    reached and its depth."""
    cursor, depth = None, 0
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for _ in range(pages):
            resp = client.get(HOME, params={"cursor": cursor} if cursor else None)
            resp.raise_for_status()
            following = resp.json().get("next_cursor")
            if not following:
                break
            cursor, depth = following, depth + 1
    return cursor, depth


def cpu_meter(backend: str, suite: Suite, others: dict[str, int]) -> cpu.CPUMeter:
    """Counts the suite's six processes, ``others`` (the floor and the gateway in front of it,
    when they run), and on PostgreSQL every ``postgres`` process of this machine (the server's
    own and its backends)."""
    children = cpu.children_by_port(suite.process.pid, suite.ports)
    if set(children) != set(suite.ports):
        raise SystemExit(f"found the suite's processes {sorted(children)}, not {sorted(suite.ports)}")
    processes = {**children, **others}
    if PROFILING is not None:
        PROFILING.processes = processes
    return cpu.CPUMeter(processes, by_name={"postgres": "postgres"} if backend == "postgres" else {})


def measure_home(
    args: argparse.Namespace,
    backend: str,
    suite: Suite,
    world: dataset.World,
    size: int,
    feed_url: str,
    urls: tuple[str, str],
    meter: cpu.CPUMeter,
) -> dict[str, Any]:
    """The home timeline's scenarios at one size (``urls``: the floor's, and the gateway in
    front of it)."""
    floor_url, over_url = urls
    dense, sparse = suite.token(world.dense), suite.token(world.sparse)
    cursor, depth = deep_cursor(suite.feed, dense, args.deep_pages)
    deep = f"{HOME}?cursor={cursor}" if cursor else HOME
    # Below the dense reader's inbox (800 posts): read on demand (decision 0012).
    cursor, older_depth = deep_cursor(suite.feed, dense, args.older_pages)
    older = f"{HOME}?cursor={cursor}" if cursor else HOME
    dataset.analyze_inboxes(feed_url)
    scenarios = {
        "floor": (floor_url, dense),
        "gateway_over_floor": (over_url + HOME, dense),
        "home_gateway_dense_first": (suite.url + HOME, dense),
        "home_feed_dense_first": (suite.feed + HOME, dense),
        "home_gateway_sparse_first": (suite.url + HOME, sparse),
        "home_feed_sparse_first": (suite.feed + HOME, sparse),
        "home_gateway_dense_deep": (suite.url + deep, dense),
        "home_gateway_dense_older": (suite.url + older, dense),
    }
    runs: dict[str, Any] = {"deep_page_depth": depth, "older_page_depth": older_depth}
    for connections in args.connections:
        for name, (url, token) in scenarios.items():
            if connections != args.connections[0] and name not in (
                "floor",
                "gateway_over_floor",
                "home_gateway_dense_first",
            ):
                continue
            wrk(url, token, connections, 2)  # warm-up, discarded
            runs[f"{name}@{connections}"] = figure = wrk(
                url, token, connections, args.seconds, meter=meter, run=f"{size:,} {name}@{connections}"
            )
            print(
                f"[{backend}] {size:>9,} {name + '@' + str(connections):<32} {report.line(figure)}"
                f"\n    {report.cpu_line(figure)}",
                flush=True,
            )
    return runs


POSTING_RATE = 50  # posts a second, for the open-loop run (bench.rate)
RATE_SECONDS = 30  # at least: 1,500 posts, so that the p99 is not the 5th slowest of 500


def measure_posting(
    args: argparse.Namespace,
    backend: str,
    suite: Suite,
    world: dataset.World,
    urls: Mapping[str, str],
    meter: cpu.CPUMeter,
) -> dict[str, Any]:
    """Writing, at 32 connections: ``POST /api/v1/posts`` to the 20-member and to the
    2,000-member group, a comment on one post of the small group, reactions to the newest
    organisation posts (a different post each time: a second reaction of the same kind
    changes nothing); then posts to the small group at ``POSTING_RATE`` a second, open loop
    (``bench.rate``)."""
    small_author = world.members[world.small_group][1]
    large_author = world.members[world.large_group][1]
    posting: dict[str, Any] = {}

    def measured(label: str, url: str, token: str, warm: Sequence[str] = (), **options: Any) -> None:
        """``warm``: the warm-up's paths, when the run's own must stay unused before it."""
        wrk(url, token, args.connections[0], 2, **{**options, **({"paths": warm} if warm else {})})
        posting[label] = figure = wrk(
            url,
            token,
            args.connections[0],
            args.seconds,
            meter=meter,
            run=f"write {label}",
            settled=lambda: settle(urls),
            **options,
        )
        print(f"[{backend}] write {label:<20} {report.line(figure)}", flush=True)
        print(f"    {report.cpu_line(figure)}", flush=True)

    for label, group, author in (
        ("group_20", world.small_group, small_author),
        ("group_2000", world.large_group, large_author),
    ):
        body = {
            "body": "Bench post to the group, with a #bench tag.",
            "audience": "group",
            "group_id": str(group),
        }
        measured(label, suite.url + "/api/v1/posts", suite.token(author), body=body)
    token = suite.token(small_author)
    post = _a_post(suite.url, token, world.small_group)
    comment = {"body": "A bench comment on the post."}
    measured("comment", f"{suite.url}/api/v1/posts/{post}/comments", token, body=comment)
    reactions = [
        f"/api/v1/posts/{post_id}/reactions/like"
        for post_id in dataset.newest_posts(urls["feed"], "organisation", 20_000)
    ]
    # The warm-up reacts to the oldest 2,000 of those posts, the run to the others
    warm, run = reactions[-2_000:], reactions[:-2_000]
    measured("reaction", suite.url + run[0], token, warm=warm, method="PUT", paths=run)
    body = {"body": "Bench post at a steady rate.", "audience": "group", "group_id": str(world.small_group)}
    settle(urls)
    start = meter.snapshot()
    figure = rate.at_rate(
        suite.url + "/api/v1/posts", token, body, POSTING_RATE, max(args.seconds, RATE_SECONDS)
    )
    settle(urls)
    # At a steady rate each post's events go out in small batches, so a post costs more than
    # under wrk's load, where a delivery carries dozens: this is the cost at a human rate. The
    # generator runs in this process, so its CPU counts under ``other``.
    usage = meter.per_request(start, meter.snapshot(), figure["requests"])
    posting[f"group_20_at_{POSTING_RATE}_per_s"] = figure = {**figure, "rps": figure["rate"], "cpu": usage}
    print(f"[{backend}] write {'at ' + str(POSTING_RATE) + '/s':<20} {report.line(figure)}", flush=True)
    print(f"    {report.cpu_line(figure)}", flush=True)
    return posting


def settle(urls: Mapping[str, str], timeout: float = 300.0) -> None:
    """Waits until no service has an event left to deliver: the runs before leave backlogs
    (32 writers outrun the receivers), and a measured run must not pay for them."""
    engines = {name: dataset.engine_for(url) for name, url in urls.items()}
    deadline = time.monotonic() + timeout
    try:
        while True:
            pending = {}
            for name, engine in engines.items():
                with engine.connect() as conn:
                    pending[name] = conn.execute(
                        text("SELECT count(*) FROM outbox_delivery WHERE status = 'pending'")
                    ).scalar_one()
            if not any(pending.values()):
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"events still pending after {timeout:.0f} s: {pending}")
            time.sleep(0.5)
    finally:
        for engine in engines.values():
            engine.dispose()


def _a_post(base: str, token: str, group: uuid.UUID) -> str:
    """A new post in ``group``, by the token's persona: what the comments go to."""
    resp = httpx.post(
        base + "/api/v1/posts",
        json={"body": "Comment on this.", "audience": "group", "group_id": str(group)},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    if resp.status_code != 201:
        raise SystemExit(f"POST /api/v1/posts: {resp.status_code} {resp.text[:500]}")
    return str(resp.json()["id"])


def measure_search(
    args: argparse.Namespace, backend: str, suite: Suite, world: dataset.World, size: int, meter: cpu.CPUMeter
) -> dict[str, Any]:
    """The search scenarios at one size (``bench.search``), for the dense reader."""
    connections = args.connections[0]
    token = suite.token(world.dense)

    def run(kind: str, path: str) -> dict[str, Any]:
        wrk(suite.url + path, token, connections, 2)  # warm-up, discarded
        return wrk(
            suite.url + path, token, connections, args.seconds, meter=meter, run=f"{size:,} search {kind}"
        )

    def say(kind: str, figure: dict[str, Any]) -> None:
        print(f"[{backend}] {size:>9,} search {kind:<30} {search.line(figure)}", flush=True)
        if figure.get("cpu"):
            print(f"    {report.cpu_line(figure)}", flush=True)

    return search.measure(suite.url, token, run, say=say)


def measure_media(
    args: argparse.Namespace, backend: str, suite: Suite, world: dataset.World, urls: dict[str, str]
) -> dict[str, Any]:
    """The media scenarios (``bench.media``): a 20 MB upload's memory, and a 1 MB image served
    through the gateway against the gateway's static route."""
    author, reader = world.members[world.small_group][:2]
    media.add_replicas(urls["media"], [author, reader])
    pids = cpu.children_by_port(suite.process.pid, suite.ports)
    results: dict[str, Any] = {
        "backend": backend,
        "connections": args.connections[0],
        "seconds_per_run": args.seconds,
    }
    results["upload"] = figure = media.measure_upload_memory(suite.url, suite.token(author), pids["media"])
    print(
        f"[{backend}] media upload 20 MB: peak RSS growth {figure['peak_growth_mb']} MB ({figure})",
        flush=True,
    )
    media_id, content, signed = media.prepare_image(suite.url, suite.token(author), suite.token(reader))
    process, static_base = media.start_static_gateway(suite.var, suite.identity, content, free_ports)
    try:
        wait_ready(static_base + media.STATIC_PATH, process, 60)
        token = suite.token(reader)
        scenarios = {
            "file_bearer": suite.url + f"/api/v1/media/{media_id}/file",
            "file_signed": suite.url + signed if signed.startswith("/") else signed,
            "static": static_base + media.STATIC_PATH,
        }
        for name, url in scenarios.items():
            # a signed link and the static route are read without a token, as an <img> reads them
            bearer = token if name == "file_bearer" else ""
            wrk(url, bearer, args.connections[0], 2)  # warm-up, discarded
            results[name] = figure = wrk(url, bearer, args.connections[0], args.seconds)
            print(f"[{backend}] media {name:<14} {media.line(figure)}", flush=True)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
    results["image_bytes"] = len(content)
    results["ratios"] = media.judge(results)
    print(media.table(results), flush=True)
    return results


def measure(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"bench-{backend}-", dir=ROOT / "var"))
    urls = database_urls(backend, work)
    for name in SERVICES:
        upgrade(ROOT / "services" / name, urls[name])
    started = time.monotonic()
    world = dataset.populate(urls["feed"], identity_url=urls["identity"])
    print(f"[{backend}] base dataset in {time.monotonic() - started:.0f} s", flush=True)
    home, searching = "home" in args.scenarios, "search" in args.scenarios
    writing = "posting" in args.scenarios
    measuring_media = "media" in args.scenarios
    suite = Suite(urls, work)
    helpers: dict[str, subprocess.Popen[bytes]] = {}
    results: dict[str, Any] = {"backend": backend}
    if home:
        results.update(sizes={}, seconds_per_run=args.seconds)
    if searching:
        results["search"] = {
            "backend": backend,
            "reader": "dense",
            "connections": args.connections[0],
            "seconds_per_run": args.seconds,
            "queries": {**dataset.SEARCH_WORDS, "people": dataset.PEOPLE_QUERY},
            "deep_page": search.DEEP_PAGE,
            "sizes": {},
        }
    global PROFILING
    if args.profile:
        PROFILING = Profiler({}, ROOT / "var" / "profiles" / backend)
    try:
        if home:
            jwks = {"keys": [key.public_jwk for key in KeyRing.from_dir(work / "keys").keys]}
            helpers["floor"], floor_base = start_floor(work, jwks)
            helpers["gateway_over_floor"], over_url = start_gateway_over(floor_base, suite.identity, work)
        meter = cpu_meter(backend, suite, {name: process.pid for name, process in helpers.items()})
        if measuring_media:
            results["media"] = measure_media(args, backend, suite, world, urls)
        for size in args.sizes if home or searching or writing else ():
            started = time.monotonic()
            dataset.add_posts(urls["feed"], world, size)
            print(f"[{backend}] {size:,} posts ({time.monotonic() - started:.0f} s to add)", flush=True)
            if home:
                results["sizes"][str(size)] = measure_home(
                    args, backend, suite, world, size, urls["feed"], (floor_base + "/floor", over_url), meter
                )
            if searching:
                # the machine's load just before: another process's work shows in the figures
                load = [round(value, 2) for value in os.getloadavg()]
                results["search"].setdefault("load_average_before", {})[str(size)] = load
                print(f"[{backend}] {size:>9,} load average {load}", flush=True)
                results["search"]["sizes"][str(size)] = figures = measure_search(
                    args, backend, suite, world, size, meter
                )
                if backend == "postgres":
                    # The suite's pools hold tens of connections: the baseline's 32 more would
                    # pass the server's max_connections, so it runs with the suite stopped.
                    suite.stop()
                    figures["like"] = figure = search.like_baseline(
                        urls["feed"], world.dense, args.connections[0], args.seconds
                    )
                    print(
                        f"[{backend}] {size:>9,} search {'like (no suite, no gateway)':<30} "
                        f"{search.line(figure)}",
                        flush=True,
                    )
                    if home or size != args.sizes[-1]:
                        suite = Suite(urls, work, suite.ports)
                        meter = cpu_meter(
                            backend, suite, {name: process.pid for name, process in helpers.items()}
                        )
        if searching and backend == "postgres" and args.explain:
            results["search"]["explain"] = {"size": args.sizes[-1], **search.explain(urls, world.dense)}
        if writing:
            results["posting"] = measure_posting(args, backend, suite, world, urls, meter)
    finally:
        suite.stop()
        for process in helpers.values():
            process.send_signal(signal.SIGINT)
            process.wait(30)
    results["dataset"] = dataset.describe(world)
    if PROFILING is not None:
        summary = args.results / f"profiles-{backend}.md"
        summary.write_text(PROFILING.markdown(backend))
        print(f"[{backend}] profiles: {summary}", flush=True)
        PROFILING = None
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return results


def write(results: dict[str, Any], machine: dict[str, Any], folder: Path = RESULTS) -> None:
    """``bench/results/<backend>.json``, its charts and tables. A run of only some scenarios
    keeps the file's figures of the others (a search-only run keeps the timelines' and the
    other way round)."""
    backend = results["backend"]
    path = folder / f"{backend}.json"
    previous: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if "sizes" in results:
        if "posting" not in results and "posting" in previous:  # a run of the timelines alone
            results["posting"] = previous["posting"]
        results["machine"] = machine
        results["ratios"], results["targets"] = report.judge(results)
        report.chart(results, folder / f"latency-{backend}.png")
        print(report.table(results), flush=True)
        if "search" not in results and "search" in previous:
            results["search"] = previous["search"]
        merged = results
    else:
        merged = {**previous, "backend": backend}
        if "posting" in results:
            merged["posting"] = results["posting"]
            if "sizes" in merged:  # a posting-only run: judged with the timelines measured before
                merged["ratios"], merged["targets"] = report.judge(merged)
                print(report.table(merged), flush=True)
    if "media" in results:
        results["media"]["machine"] = machine
        merged["media"] = results["media"]
    elif "media" in previous:
        merged["media"] = previous["media"]
    if "search" in results:
        searched = results["search"]
        searched["machine"] = machine
        searched["dataset"] = results["dataset"]
        searched["ratios"], searched["targets"] = search.judge(searched)
        search.chart(searched, folder / f"search-{backend}.png")
        print(search.table(searched), flush=True)
        merged["search"] = searched
    path.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n")


SCENARIOS = ("home", "posting", "search", "media")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--backends", default="postgres,sqlite")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="home (the timelines), posting (posts, comments, reactions; posts at a steady rate), "
        "search (bench/search.py), media (bench/media.py)",
    )
    parser.add_argument("--connections", default="32,256")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--deep-pages", type=int, default=25)
    parser.add_argument(
        "--older-pages", type=int, default=50, help="depth of the page below the inbox (20 posts a page)"
    )
    parser.add_argument(
        "--no-explain",
        dest="explain",
        action="store_false",
        help="skip the plans (EXPLAIN ANALYZE) of the search statements at the largest size",
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases and logs under var/")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the processes with py-spy during each measured run (bench/profile.py); "
        "writes <results>/profiles-<backend>.md, the stacks under var/profiles/",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the results go")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.connections = [int(c) for c in args.connections.split(",")]
    args.scenarios = set(args.scenarios.split(","))
    if not args.scenarios or not args.scenarios <= set(SCENARIOS):
        parser.error(f"--scenarios: a comma-separated list of {', '.join(SCENARIOS)}")
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk (make bench does it)", file=sys.stderr)
        return 2
    (ROOT / "var").mkdir(exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)
    machine = {
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for backend in args.backends.split(","):
        write(measure(args, backend), machine, args.results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
