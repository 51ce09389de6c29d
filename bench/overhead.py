"""What the access log and the metrics cost each request: ``python -m bench.overhead``.

Every process wraps its app in ``kit.middleware.RequestContextMiddleware`` (request id,
security headers, one access-log line) and ``kit.metrics.MetricsMiddleware`` (a counter, a
gauge and a histogram per request); the gateway adds its own counting the same way. This
calls an ASGI app that answers at once, alone and wrapped in each, many times in one process,
and prints the CPU each wrapper adds per request: the access log at INFO (a JSON line written
to a file, as a service writes to its log) and at WARNING (the line built, not written: what
``make bench`` runs with), and the metrics; and a FastAPI route with four dependencies that
read ``app.state``, each a plain ``def`` (run on a worker thread) or an ``async def``.
Compared with the CPU a process spends on a whole request in the benchmark's results
(``--per-request-ms``, by default the gateway's 0.89 ms for a home page), it says which share
of each request they take: the target is under 5 % for the log and the metrics.

Standalone: no service, no database. Not a test: ``make bench`` does not run it; its output goes
to ``bench/results/overhead.json`` (``--results``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.principal import Principal
from kit.logging import configure_logging
from kit.metrics import HTTPMetrics, MetricsMiddleware
from kit.middleware import RequestContextMiddleware

RESULTS = Path(__file__).resolve().parent / "results" / "overhead.json"
BODY = b'{"items":[]}'
START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
}
END: Message = {"type": "http.response.body", "body": BODY}
CALLER = Principal(
    subject="bench",
    persona_id=uuid.uuid4(),
    context="professional",
    scopes=frozenset({"read"}),
    roles=frozenset(),
    token_id="t",  # noqa: S106 - an id, not a password
    issued_at=0.0,
    expires_at=0.0,
)


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    """The app under the wrappers: it answers at once, the caller already known."""
    scope["state"]["principal"] = CALLER
    await send(dict(START))
    await send(END)


def scope() -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/timelines/home",
        "raw_path": b"/api/v1/timelines/home",
        "query_string": b"",
        "headers": [(b"host", b"feed"), (b"authorization", b"Bearer x")],
        "state": {},
    }


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(_message: Message) -> None:
    return None


async def per_request_us(app: ASGIApp, requests: int) -> float:
    """CPU microseconds per request of ``app`` (process time, so the machine's other work does
    not count)."""
    for _ in range(1000):  # warm: the metrics' children made, the code paths run once
        await app(scope(), receive, send)
    started = time.process_time()
    for _ in range(requests):
        await app(scope(), receive, send)
    return (time.process_time() - started) / requests * 1e6


def _reader(index: int, *, plain: bool) -> Callable[[Request], Any]:
    """A dependency that reads ``app.state``, as the services' do: a plain ``def`` (FastAPI
    runs it on a worker thread) or an ``async def`` (run on the event loop)."""
    if plain:

        def read(request: Request) -> Any:
            return request.app.state.settings

    else:

        async def read(request: Request) -> Any:  # type: ignore[misc]
            return request.app.state.settings

    read.__name__ = f"read_{index}"  # four dependencies, not one cached four times
    return read


def route(*, plain: bool) -> ASGIApp:
    """A FastAPI route with four dependencies that read ``app.state``, as a write's has."""
    app = FastAPI()
    app.state.settings = object()
    a, b, c, d = (_reader(i, plain=plain) for i in range(4))

    @app.get("/api/v1/timelines/home")
    async def home(
        _a: Annotated[Any, Depends(a)],
        _b: Annotated[Any, Depends(b)],
        _c: Annotated[Any, Depends(c)],
        _d: Annotated[Any, Depends(d)],
    ) -> Response:
        return Response(BODY, media_type="application/json")

    return app


def wrappers() -> dict[str, tuple[str, ASGIApp]]:
    """Each measured app with the logging level it runs at."""
    metrics = HTTPMetrics(CollectorRegistry(auto_describe=True))
    return {
        "app alone": ("WARNING", answer),
        "access log at WARNING": ("WARNING", RequestContextMiddleware(answer)),
        "access log at INFO": ("INFO", RequestContextMiddleware(answer)),
        "metrics": ("WARNING", MetricsMiddleware(answer, metrics)),
        "route, 4 async dependencies": ("WARNING", route(plain=False)),
        "route, 4 plain dependencies": ("WARNING", route(plain=True)),
    }


async def measure(requests: int, rounds: int) -> dict[str, float]:
    """The median over ``rounds`` of each app's CPU per request."""
    samples: dict[str, list[float]] = {}
    apps = wrappers()
    for _ in range(rounds):  # interleaved, so that drift weighs on each alike
        for name, (level, app) in apps.items():
            configure_logging("bench", level)
            samples.setdefault(name, []).append(await per_request_us(app, requests))
    return {name: sorted(values)[len(values) // 2] for name, values in samples.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="measurements of each, interleaved")
    parser.add_argument(
        "--per-request-ms",
        type=float,
        default=0.89,
        help="the CPU one process spends on a whole request, to compare with (bench results)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        log_file = Path(folder) / "access.log"
        saved = os.dup(2)
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(fd, 2)  # the JSON lines go where a service's log would, not to this terminal
        try:
            found = asyncio.run(measure(args.requests, args.rounds))
        finally:
            os.dup2(saved, 2)
            os.close(fd)
        written = sum(1 for _ in log_file.open())
    logging.getLogger().handlers.clear()

    alone = found["app alone"]
    added = {name: round(us - alone, 1) for name, us in found.items() if name != "app alone"}
    budget = args.per_request_ms * 1000
    report: dict[str, Any] = {
        "requests": args.requests,
        "rounds": args.rounds,
        "app_alone_us": round(alone, 1),
        "added_us": added,
        "per_request_ms": args.per_request_ms,
        "share_of_request": {name: round(us / budget, 4) for name, us in added.items()},
        "access_lines_written": written,
        "python": sys.version.split()[0],
    }
    print(f"app alone: {alone:.1f} us per request")
    for name, us in added.items():
        print(f"{name:>24}: +{us:.1f} us per request, {us / budget:.1%} of {args.per_request_ms} ms")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
