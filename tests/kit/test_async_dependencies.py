"""Every route's dependencies and endpoint are ``async def``: FastAPI runs a plain ``def`` on a
worker thread for each request, a hand-off to a thread and back (and a wake-up of the event
loop) for what is mostly a read of ``app.state`` (decision 0044)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute


def _routes(router: Any) -> Iterator[APIRoute]:
    """Every API route, through the routers included in ``router`` at any depth."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router (FastAPI's own wrapper)
            yield from _routes(route.original_router)
        elif hasattr(route, "routes"):
            yield from _routes(route)


def _is_async(call: Any) -> bool:
    return (
        inspect.iscoroutinefunction(call)
        or inspect.isasyncgenfunction(call)
        or inspect.iscoroutinefunction(getattr(call, "__call__", None))  # noqa: B004 (an instance's __call__)
    )


def _sync_calls(dependant: Dependant) -> Iterator[str]:
    for sub in dependant.dependencies:
        if sub.call is not None and not _is_async(sub.call):
            yield f"{getattr(sub.call, '__module__', '?')}.{getattr(sub.call, '__qualname__', sub.call)}"
        yield from _sync_calls(sub)


async def test_no_route_runs_a_dependency_or_endpoint_on_a_thread(suite):
    found: dict[str, set[str]] = {}
    apps = {**suite.services, "gateway": suite.gateway}
    for name, app in apps.items():
        routes = list(_routes(app.router))
        assert routes, name
        for route in routes:
            calls = set(_sync_calls(route.dependant))
            if not _is_async(route.endpoint):
                calls.add(f"{route.endpoint.__module__}.{route.endpoint.__qualname__}")
            if calls:
                found.setdefault(f"{name} {sorted(route.methods)} {route.path}", set()).update(calls)
    assert found == {}
