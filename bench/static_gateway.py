"""The baseline of the media serving benchmark (``bench.media``): the gateway's own app, in its
own process, with one plain static route in front of it (Starlette's ``StaticFiles`` over
``BENCH_STATIC_DIR``, at ``/bench-static/``). The same bytes served here and through media
compare what proxying and the owner's check cost with what serving a file costs the gateway's
process at all. For the benchmark only: no deployment serves files this way."""

from __future__ import annotations

import os

from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.app import create_app as create_gateway

PREFIX = "/bench-static"


def create_app() -> ASGIApp:
    gateway = create_gateway()
    static = StaticFiles(directory=os.environ["BENCH_STATIC_DIR"])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX + "/"):
            scope = {**scope, "path": scope["path"][len(PREFIX) :], "root_path": PREFIX}
            await static(scope, receive, send)
            return
        await gateway(scope, receive, send)

    return app
